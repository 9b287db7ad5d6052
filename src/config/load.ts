import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { bundledConfigFile } from './package.js';
import { type AppConfig, type Config, type ConfigFile, type EnvSettings, envSchema, fileSchema, type RedisNodeAddress, type RedisTopologyConfig, type SecretRef, type UpstreamName, upstreamEnv } from './schema.js';
import { Secret } from './secret.js';
import proxyaddr from 'proxy-addr';
import { keyringProblem } from '../infra/keyring.js';
import type { RedisTopology } from '../infra/store-core.js';
import { resolveAgentConfig } from './agent.js';
import { resolveDrmConfig } from './drm.js';
import { resolveUserMetadataConfig } from './user-metadata.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Every problem found, one line each, naming the variable or YAML path and what is expected. */
export class ConfigError extends Error {
  constructor(
    readonly problems: readonly string[],
    readonly configFile?: string,
  ) {
    const header = configFile ? `Invalid configuration (file ${configFile}):` : 'Invalid configuration:';
    super([header, ...problems.map((p) => `  - ${p}`)].join('\n'));
    this.name = 'ConfigError';
  }
}

/** Env variables whose value may be echoed back in an error message (no secrets among them). */
const echoable = new Set(['PASSGATE_PORT', 'PASSGATE_METRICS_PORT', 'PASSGATE_REQUEST_TIMEOUT_MS', 'PASSGATE_LOG_LEVEL', 'PASSGATE_LOG_SAMPLE_INTERVAL_MS', 'PASS_BASE_URL', 'DRM_BASE_URL', 'ADAPTER_BASE_URL', 'REDIS_SENTINEL_MASTER']);

/** A port passgate (or a process the CLI starts beside it) listens on; `name` is what sets it. */
export interface Listener {
  name: string;
  what: string;
  port: number;
}

/** Listeners sharing a port cannot all bind; 0 asks the OS for a free port, so it never clashes. */
export function portClashes(listeners: readonly Listener[]): string[] {
  return listeners.flatMap((listener, i) => {
    const earlier = listeners.slice(0, i).find((other) => other.port !== 0 && other.port === listener.port);
    return earlier ? [`${listener.name}: ${listener.port} is also ${earlier.name} (${earlier.what}); ${listener.what} needs a port of its own`] : [];
  });
}

/**
 * Builds the Config from the environment and the YAML file it names; resolves secrets.
 * `listeners`: ports the caller opens beside passgate's own (serve --with-sim: the simulator),
 * checked against PASSGATE_PORT and PASSGATE_METRICS_PORT.
 * Throws ConfigError listing every problem at once. Only the CLI (and tests) call this.
 */
export function loadConfig(env: Env, options: { listeners?: readonly Listener[] } = {}): Config {
  const problems: string[] = [];
  // An empty variable counts as unset (`PASSGATE_PORT=` in a compose file means "default").
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));

  const settings = envSchema.safeParse(present, { reportInput: true });
  if (!settings.success) {
    for (const issue of settings.error.issues) {
      const name = String(issue.path[0]);
      problems.push(...describeIssue(issue, echoable.has(name) ? present[name] : undefined));
    }
  }

  const configFile = resolve(present.PASSGATE_CONFIG ?? bundledConfigFile);
  const file = readConfigFile(configFile, present.PASSGATE_CONFIG !== undefined, problems);

  if (!settings.success || !file) throw new ConfigError(problems, configFile);
  const s = settings.data;
  problems.push(
    ...portClashes([
      { name: 'PASSGATE_PORT', what: 'the public API', port: s.PASSGATE_PORT },
      { name: 'PASSGATE_METRICS_PORT', what: 'the ops listener (/metrics, admin API)', port: s.PASSGATE_METRICS_PORT },
      ...(options.listeners ?? []),
    ]),
  );

  const upstreams = {} as Config['upstreams'];
  for (const name of Object.keys(upstreamEnv) as UpstreamName[]) {
    const baseUrl = s[upstreamEnv[name]] ?? file.upstreams?.[name]?.base_url;
    if (baseUrl) upstreams[name] = { baseUrl };
    else problems.push(`upstreams.${name}.base_url: required (or set ${upstreamEnv[name]})`);
  }

  const secrets = new SecretResolver(env, dirname(configFile), problems);
  const apps: Record<string, AppConfig> = {};
  for (const [id, app] of Object.entries(file.apps)) {
    const appKey = secrets.resolve(app.app_key, `apps.${id}.app_key`);
    const softwareStatement = secrets.resolve(app.software_statement, `apps.${id}.software_statement`);
    if (softwareStatement && !/^[\w-]+\.[\w-]*\.[\w-]*$/.test(softwareStatement.reveal())) {
      problems.push(`apps.${id}.software_statement: expected a JWT (three dot-separated base64url parts)`);
    }
    if (!appKey || !softwareStatement) continue;
    apps[id] = { id, platform: app.platform, appKey, softwareStatement, ...(app.redirect_uri ? { redirectUri: app.redirect_uri } : {}) };
  }
  problems.push(...duplicateAppKeys(apps));

  const redis = resolveRedis(s, problems);
  const keys = resolveKeys(s, secrets, problems);
  const trustedProxies = (s.PASSGATE_TRUSTED_PROXIES ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  try {
    proxyaddr.compile(trustedProxies);
  } catch (error) {
    problems.push(`PASSGATE_TRUSTED_PROXIES: ${(error as Error).message} (expected IPs or CIDRs, comma-separated)`);
  }

  const activationApp = file.activation.app ?? Object.keys(file.apps)[0];
  if (!activationApp || !Object.hasOwn(file.apps, activationApp)) {
    problems.push(`activation.app: expected one of the apps (${Object.keys(file.apps).join(', ') || 'none configured'})`);
  }

  const agent = resolveAgentConfig(file.agent, resolve(s.PASSGATE_DATA_DIR), (ref, path) => secrets.resolve(ref, path), problems);
  const drm = resolveDrmConfig(file, upstreams.drm?.baseUrl, (ref, path) => secrets.resolve(ref, path), problems);
  const userMetadata = resolveUserMetadataConfig(file.user_metadata, (ref, path) => secrets.resolve(ref, path), problems);

  if (problems.length > 0) throw new ConfigError(problems, configFile);
  return {
    http: { host: s.PASSGATE_HOST, port: s.PASSGATE_PORT, requestTimeoutMs: s.PASSGATE_REQUEST_TIMEOUT_MS },
    metrics: { port: s.PASSGATE_METRICS_PORT },
    logLevel: s.PASSGATE_LOG_LEVEL,
    logSampleIntervalMs: s.PASSGATE_LOG_SAMPLE_INTERVAL_MS,
    dataDir: resolve(s.PASSGATE_DATA_DIR),
    ...redis,
    store: { timeoutMs: s.PASSGATE_STORE_TIMEOUT_MS },
    configFile,
    serviceProvider: file.service_provider,
    upstreams,
    apps,
    ...(keys ? { keys } : {}),
    ...(drm ? { drm } : {}),
    ...(agent ? { agent } : {}),
    ...(userMetadata ? { userMetadata } : {}),
    ...(s.PASSGATE_ADMIN_KEY ? { adminKey: new Secret(s.PASSGATE_ADMIN_KEY) } : {}),
    trustedProxies,
    ...(s.PASSGATE_CLIENT_PORT_HEADER ? { clientPortHeader: s.PASSGATE_CLIENT_PORT_HEADER } : {}),
    upstreamClient: {
      dnsMaxTtlSeconds: file.upstream_client.dns_max_ttl_seconds,
      connectTimeoutMs: file.upstream_client.connect_timeout_ms,
      requestTimeoutMs: file.upstream_client.request_timeout_ms,
      callDeadlineMs: file.upstream_client.call_deadline_ms,
      maxRetries: file.upstream_client.max_retries,
      breaker: {
        consecutiveFailures: file.upstream_client.breaker.consecutive_failures,
        halfOpenAfterMs: file.upstream_client.breaker.half_open_after_ms,
      },
    },
    throttle: { ratePerSecond: file.throttle.rate_per_second, burst: file.throttle.burst, maxWaitMs: file.throttle.max_wait_ms },
    dcr: {
      tokenExpirySkewSeconds: file.dcr.token_expiry_skew_seconds,
      tokenRefreshAheadSeconds: file.dcr.token_refresh_ahead_seconds,
      reregistrations: { burst: file.dcr.reregistrations.burst, perMinute: file.dcr.reregistrations.per_minute },
    },
    ...(s.PASSGATE_PUBLIC_URL ? { publicUrl: s.PASSGATE_PUBLIC_URL } : {}),
    signin: {
      domainName: file.signin.domain_name,
      pollIntervalMs: file.signin.poll_interval_ms,
      maxWaiters: file.signin.max_waiters,
      profileRereadIntervalMs: file.signin.profile_reread_interval_ms,
      configurationTtlMs: file.signin.configuration_ttl_ms,
      hiddenMvpds: file.signin.hidden_mvpds,
      hideTempPass: file.signin.hide_temppass,
    },
    entitlement: {
      preauthorizeChunk: file.entitlement.preauthorize_chunk,
      preauthorizeCacheMaxMs: file.entitlement.preauthorize_cache_max_ms,
      permitCapMs: file.entitlement.permit_cap_ms,
      degradedPermitMaxMs: file.entitlement.degraded_permit_max_ms,
    },
    activation: {
      app: activationApp as string,
      attemptsPerIp: { burst: file.activation.attempts_per_ip.burst, perMinute: file.activation.attempts_per_ip.per_minute },
      attemptsGlobal: { burst: file.activation.attempts_global.burst, perMinute: file.activation.attempts_global.per_minute },
      brand: {
        name: file.activation.brand.name,
        accentColor: file.activation.brand.accent_color.toLowerCase(),
        ...(file.activation.brand.logo_url ? { logoUrl: file.activation.brand.logo_url } : {}),
      },
    },
    devices: {
      tokenTtlSeconds: file.devices.token_ttl_seconds,
      registrationsPerMinute: file.devices.registrations_per_minute,
      registrationBurst: file.devices.registration_burst,
      l1Ms: file.devices.l1_ms,
    },
  };
}

/**
 * The keyring from PASSGATE_KEYS or PASSGATE_KEYS_FILE. Replicas on Redis must share it, so it is
 * required there; the embedded store may generate its own (main.ts).
 */
function resolveKeys(s: EnvSettings, secrets: SecretResolver, problems: string[]): Secret | undefined {
  if (s.PASSGATE_KEYS && s.PASSGATE_KEYS_FILE) {
    problems.push('PASSGATE_KEYS_FILE: set either PASSGATE_KEYS or PASSGATE_KEYS_FILE, not both');
    return undefined;
  }
  const keys = s.PASSGATE_KEYS
    ? new Secret(s.PASSGATE_KEYS)
    : s.PASSGATE_KEYS_FILE
      ? secrets.resolve({ file: s.PASSGATE_KEYS_FILE }, 'PASSGATE_KEYS_FILE')
      : undefined;
  if (!keys) {
    if ((s.REDIS_URL || s.REDIS_CLUSTER_NODES || s.REDIS_SENTINELS) && !s.PASSGATE_KEYS_FILE) {
      problems.push('PASSGATE_KEYS: required with REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS (every replica must encrypt and sign with the same keys); see README "Keys"');
    }
    return undefined;
  }
  const invalid = keyringProblem(keys.reveal());
  if (invalid) {
    problems.push(`${s.PASSGATE_KEYS ? 'PASSGATE_KEYS' : 'PASSGATE_KEYS_FILE'}: ${invalid}`);
    return undefined;
  }
  return keys;
}

/** Every upstream base URL pointed at one simulator (SPEC §10: one simulator stands in for all three). */
export function upstreamsAt(url: string): Env {
  return { PASS_BASE_URL: url, DRM_BASE_URL: url, ADAPTER_BASE_URL: url };
}

/** A throwaway local instance: loopback, ephemeral ports, its own data dir, upstreams at one simulator. */
export function localInstanceEnv(opts: { simUrl: string; dataDir: string; configFile?: string }): Env {
  return {
    PASSGATE_PORT: '0',
    PASSGATE_METRICS_PORT: '0',
    PASSGATE_HOST: '127.0.0.1',
    PASSGATE_DATA_DIR: opts.dataDir,
    ...(opts.configFile ? { PASSGATE_CONFIG: opts.configFile } : {}),
    ...upstreamsAt(opts.simUrl),
  };
}

/** The resolved configuration as plain JSON, every secret masked (what `config check` prints). */
export function describeConfig(config: Config): Record<string, unknown> {
  // Secret#toJSON masks, so a JSON round trip cannot leak a value.
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
}

function readConfigFile(path: string, named: boolean, problems: string[]): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? String(error);
    problems.push(named ? `PASSGATE_CONFIG: cannot read ${path} (${why})` : `the bundled config file ${path} cannot be read (${why}); set PASSGATE_CONFIG`);
    return undefined;
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    problems.push(`${path}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
    return undefined;
  }
  const parsed = fileSchema.safeParse(raw ?? {}, { reportInput: true });
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) problems.push(...describeIssue(issue));
  return undefined;
}

class SecretResolver {
  constructor(
    private readonly env: Env,
    private readonly baseDir: string,
    private readonly problems: string[],
  ) {}

  resolve(ref: SecretRef, path: string): Secret | undefined {
    if (typeof ref === 'string') return new Secret(ref);
    if ('env' in ref) {
      const value = this.env[ref.env];
      if (value) return new Secret(value);
      this.problems.push(`${path}: environment variable ${ref.env} is not set`);
      return undefined;
    }
    const file = resolve(this.baseDir, ref.file);
    try {
      // Mounted secrets often end with a newline that is not part of the value.
      const value = readFileSync(file, 'utf8').trim();
      if (value) return new Secret(value);
      this.problems.push(`${path}: secret file ${file} is empty`);
    } catch (error) {
      this.problems.push(`${path}: cannot read secret file ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    return undefined;
  }
}

function duplicateAppKeys(apps: Record<string, AppConfig>): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const app of Object.values(apps)) {
    const other = seen.get(app.appKey.reveal());
    if (other) problems.push(`apps.${app.id}.app_key: the same key as apps.${other}.app_key (app keys must be unique)`);
    else seen.set(app.appKey.reveal(), app.id);
  }
  return problems;
}

/**
 * The Redis settings: exactly one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS (+
 * REDIS_SENTINEL_MASTER), or none (the embedded store); REDIS_PASSWORD for any of them (for
 * REDIS_URL only when the URL has no password). Passwords are Secrets masked as `***`.
 */
function resolveRedis(s: EnvSettings, problems: string[]): { redisUrl?: Secret; redis?: RedisTopologyConfig } {
  const chosen = [
    s.REDIS_URL ? 'REDIS_URL' : undefined,
    s.REDIS_CLUSTER_NODES ? 'REDIS_CLUSTER_NODES' : undefined,
    s.REDIS_SENTINELS ? 'REDIS_SENTINELS' : s.REDIS_SENTINEL_MASTER ? 'REDIS_SENTINEL_MASTER' : undefined,
  ].filter((name) => name !== undefined);
  if (chosen.length > 1) {
    problems.push(`${chosen.join(', ')}: set one Redis topology (one server, a cluster or Sentinel), not ${chosen.length}`);
    return {};
  }
  const password = s.REDIS_PASSWORD ? new Secret(s.REDIS_PASSWORD, '***') : undefined;
  if (chosen.length === 0) {
    if (password) problems.push('REDIS_PASSWORD: set without REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS (no Redis to use it for)');
    return {};
  }
  if (s.REDIS_URL) {
    const url = new URL(s.REDIS_URL);
    if (password && (url.password || url.username)) {
      problems.push('REDIS_PASSWORD: REDIS_URL already carries credentials; give the password in one place');
      return {};
    }
    if (password) url.password = encodeURIComponent(password.reveal());
    return { redisUrl: new Secret(url.toString(), maskUrlPassword(url.toString())) };
  }
  const withPassword = password ? { password } : {};
  if (s.REDIS_CLUSTER_NODES) {
    const nodes = parseNodes('REDIS_CLUSTER_NODES', s.REDIS_CLUSTER_NODES, problems);
    return nodes ? { redis: { kind: 'cluster', nodes, ...withPassword } } : {};
  }
  if (!s.REDIS_SENTINELS) {
    problems.push('REDIS_SENTINELS: required with REDIS_SENTINEL_MASTER (the sentinels to ask for the master, host:port,…)');
    return {};
  }
  const sentinels = parseNodes('REDIS_SENTINELS', s.REDIS_SENTINELS, problems);
  if (!s.REDIS_SENTINEL_MASTER) {
    problems.push('REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS (the master name the sentinels monitor, e.g. mymaster)');
    return {};
  }
  return sentinels ? { redis: { kind: 'sentinel', sentinels, masterName: s.REDIS_SENTINEL_MASTER, ...withPassword } } : {};
}

const NODE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/;

/** `host:port,host:port,…` ([v6]:port too); undefined (and a problem per bad entry) when any is wrong. */
function parseNodes(name: string, value: string, problems: string[]): RedisNodeAddress[] | undefined {
  const nodes: RedisNodeAddress[] = [];
  const seen = new Set<string>();
  let bad = false;
  value.split(',').forEach((raw, i) => {
    const entry = raw.trim();
    const match = NODE.exec(entry);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535) {
      problems.push(`${name}: entry ${i + 1} ${JSON.stringify(entry)} is not host:port with a port from 1 to 65535 (expected e.g. redis-0.redis:6379,redis-1.redis:6379)`);
      bad = true;
      return;
    }
    const host = (match[1] ?? match[2]) as string;
    const key = `${host.toLowerCase()}:${port}`;
    if (seen.has(key)) {
      problems.push(`${name}: ${entry} is listed twice`);
      bad = true;
    }
    seen.add(key);
    nodes.push({ host, port });
  });
  return bad ? undefined : nodes;
}

/** What createStore needs from the Config to open the shared store (secrets revealed: pass it straight on). */
export function redisStoreOptions(config: Pick<Config, 'redisUrl' | 'redis'>): { redisUrl?: string; redis?: RedisTopology } {
  if (config.redisUrl) return { redisUrl: config.redisUrl.reveal() };
  if (!config.redis) return {};
  const { password, ...rest } = config.redis;
  return { redis: { ...rest, ...(password ? { password: password.reveal() } : {}) } };
}

function maskUrlPassword(value: string): string {
  const url = new URL(value);
  if (url.password) url.password = '***';
  return url.toString();
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || '(top level)';
}

/** Zod's type names, as a YAML author would say them. */
const typeWords: Record<string, string> = { object: 'a mapping', record: 'a mapping', string: 'a string', number: 'a number', boolean: 'true or false', array: 'a list' };

function typeOfYaml(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeWords[typeof value] ?? typeof value;
}

/** `echo` is the raw value to quote back, given only where that value is not a secret. */
function describeIssue(issue: z.core.$ZodIssue, echo?: string): string[] {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const parent = issue.path.length > 0 ? `${where}.` : '';
    return issue.keys.map((key) => `${parent}${key}: unknown key (check the spelling; keys are snake_case)`);
  }
  if (issue.code === 'invalid_key') return [`${where}: ${issue.issues[0]?.message ?? issue.message}`];
  if (issue.code === 'invalid_type') {
    const expected = typeWords[issue.expected] ?? issue.expected;
    return [issue.input === undefined ? `${where}: required, expected ${expected}` : `${where}: expected ${expected}, got ${typeOfYaml(issue.input)}`];
  }
  if (issue.input === undefined) return [`${where}: required, ${issue.message}`];
  const got = echo === undefined ? '' : ` (got ${JSON.stringify(echo)})`;
  return [`${where}: ${issue.message}${got}`];
}
