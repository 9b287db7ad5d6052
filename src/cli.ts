#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { AgentUsageError, agentCommand } from './agent/cli.js';
import { ConfigError, describeConfig, loadConfig, upstreamsAt } from './config/load.js';
import {
  DRM_TYPES,
  LicenseTokenInputError,
  RESPONSE_FORMATS,
  isDrmType,
  isSiteKey,
  mintLicenseToken,
  parseTimestamp,
  verificationReport,
  verifyLicenseToken,
  type MintInput,
  type ResponseFormat,
} from './drm/pallycon/index.js';
import { packageVersion } from './config/package.js';
import type { Config } from './config/schema.js';
import { withDemoKey } from './config/user-metadata.js';
import { createLogger, type Logger } from './infra/logger.js';
import { StoreUnavailableError } from './infra/store.js';
import { displayUrl, startPassgate } from './main.js';
import type { RunningSim } from './sim/server.js';

const usage = `passgate — TV Everywhere programmer service (Adobe Pass REST API V2 + DRM license gate)

Usage:
  passgate serve [--with-sim] [--sim-port N]   run the service (HTTP API + /metrics port)
  passgate sim [--port N] [--host H]           run the upstream simulator alone (default 127.0.0.1:8081)
  passgate demo [--json]                       start the simulator and passgate on free ports, play a scripted
                                               streaming app and viewer over HTTP (register, sign in on the
                                               second screen, authorize Permit and Deny, sign out), stop both;
                                               exit 0 when every step behaved as expected, 1 naming the step
  passgate config check                        validate the configuration and print it, secrets masked
  passgate token mint --site-id S --site-key K --access-key A --drm-type T --user-id U --cid C --policy JSON
                      [--timestamp YYYY-MM-DDTHH:MM:SSZ] [--response-format F] [--key-rotation]
                                               print a PallyCon/DoveRunner license token (base64) and nothing else
  passgate token verify --site-key K --access-key A [--now YYYY-MM-DDTHH:MM:SSZ] [--cid C] [--drm-type T] TOKEN
                                               print the decoded token, its decrypted policy and "valid";
                                               exit 0 valid, 1 not (with the license server's errorCode and reason)
  passgate protect --in F --out F.pgdrm --file-id ID --label L [--key-id K] [--register] [--force]
                                               encrypt F into a passgate envelope (docs/envelope.md) with the first
                                               agent key, or --key-id; --register records the file id as a DRM file
                                               in the store that serve uses; prints one JSON line (the header, sizes)
  passgate unprotect --in F.pgdrm --out F [--force]
                                               decrypt and authenticate an envelope with the agent keys; prints its
                                               header as one JSON line on stdout; exit 1 (and nothing written) when
                                               it is not an envelope, is corrupt or names an unknown key
  passgate files register --file-id ID --type drm --label L [--key-id K]
  passgate files register --file-id ID --type plain
  passgate files show --file-id ID | passgate files remove --file-id ID
                                               the agent's file registry (SPEC §5); show/remove exit 1 when the id
                                               is not registered
  passgate --help | -h                         this text
  passgate --version                           the version

token mint encrypts --policy exactly as given (site key: 32 bytes, used as the AES-256 key);
a policy with "policy_version": 2 goes into the token's "policy" field, any other (v1-style)
rule into the legacy "token" field. --timestamp defaults to now; the token is valid 600 s from it.
--drm-type: ${DRM_TYPES.join(' | ')}; --response-format: ${RESPONSE_FORMATS.join(' | ')}.
token verify checks the hash, the 600 s window (against --now, default now), the policy
decryption and, when given, the expected --cid and --drm-type.

protect/unprotect write <out>.tmp-<random> and rename it to --out once complete (never a partial
file at --out); an existing --out is refused (exit 1) unless --force. They, and files, need the
configuration's agent section (exit 2 without it) and use the same environment as serve.

serve --with-sim starts the simulator first (on --sim-port, default 8081; 0 picks a free port)
and points every upstream at it: the one-command local setup (npm start).

Environment (serve, config check, protect, unprotect, files):
  PASSGATE_PORT          HTTP port (default 8080)
  PASSGATE_HOST          bind address (default 0.0.0.0)
  PASSGATE_METRICS_PORT  ops port: /metrics and the admin API (default 9464; not PASSGATE_PORT)
  PASSGATE_PUBLIC_URL    the URL viewers and apps reach passgate at: activation links, QR code, the
                         upstream's redirectUrl (default: the listening URL, e.g. http://127.0.0.1:8080,
                         which a phone cannot open; set e.g. http://192.168.1.20:8080 or https://tv.example.com)
  PASSGATE_DATA_DIR      embedded store directory (default ./data)
  PASSGATE_LOG_LEVEL     fatal|error|warn|info|debug|trace|silent (default info)
  PASSGATE_LOG_SAMPLE_INTERVAL_MS   repeated identical warn/error lines: one per interval, counted (default 10000; 0 = all)
  PASSGATE_REQUEST_TIMEOUT_MS  a request's headers and body must arrive within this, else 408 (default 30000)
  PASSGATE_CONFIG        YAML file: service provider, upstreams, apps (default: bundled config/example.yaml)
  REDIS_URL              redis[s]://… shared store for many replicas (absent: embedded store)
  REDIS_CLUSTER_NODES    host:port,… a Redis Cluster's seed nodes instead of REDIS_URL
  REDIS_SENTINELS, REDIS_SENTINEL_MASTER   host:port,… and the master name: Redis behind Sentinel instead
  REDIS_PASSWORD         password of the Redis servers (any of the three; REDIS_URL only if it has none)
  PASSGATE_STORE_TIMEOUT_MS  deadline of every store command and connect (default 2000; 100–30000)
  PASSGATE_KEYS, PASSGATE_KEYS_FILE   keyring kid:base64(32 bytes)[:verify][,…] (required with Redis; else generated)
  PASSGATE_TRUSTED_PROXIES  IPs/CIDRs whose X-Forwarded-For is believed (default none)
  PASSGATE_CLIENT_PORT_HEADER  header a trusted proxy sets to the device's source port
  PASSGATE_ADMIN_KEY     admin API credential (>= 32 characters; absent: the admin API is off)
  PASS_BASE_URL, DRM_BASE_URL, ADAPTER_BASE_URL   override the file's upstream base URLs

PASSGATE_PORT, PASSGATE_METRICS_PORT and, with serve --with-sim, the simulator's port must differ
(0 = any free port): config check and serve refuse a clash, exit 2, before anything listens.
`;

/** A command line we do not understand: usage on stderr, exit 2. */
class UsageError extends Error {}

type Outcome = number | 'running';

async function run(argv: string[]): Promise<Outcome> {
  const [command, ...rest] = argv;
  switch (command) {
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return 0;
    case '--version':
      console.log(packageVersion());
      return 0;
    case 'serve':
      return serve(rest);
    case 'sim':
      return sim(rest);
    case 'demo':
      return demo(rest);
    case 'config':
      return configCommand(rest);
    case 'token':
      return tokenCommand(rest);
    case 'protect':
    case 'unprotect':
    case 'files':
      return agentCommand(command, rest, { env: process.env, usage });
    case undefined:
      throw new UsageError('a command is required');
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function serve(args: string[]): Promise<Outcome> {
  const { values } = parse(args, { 'with-sim': { type: 'boolean' }, 'sim-port': { type: 'string' } });
  if (values.help) return help();
  if (!values['with-sim'] && values['sim-port'] !== undefined) throw new UsageError('--sim-port needs --with-sim');
  const simPort = portOption(values['sim-port'], '--sim-port', 8081);
  // Validate before anything starts (with --with-sim the upstreams will be the simulator).
  const simListener = { name: values['sim-port'] === undefined ? 'the simulator port (--sim-port, default 8081)' : '--sim-port', what: 'the simulator', port: simPort };
  let config = values['with-sim'] ? loadConfig(simulatorEnv(`http://127.0.0.1:${simPort || 8081}`), { listeners: [simListener] }) : loadConfig(process.env);
  const logger = createLogger({ level: config.logLevel, sampleIntervalMs: config.logSampleIntervalMs });

  let simulator: RunningSim | undefined;
  if (values['with-sim']) {
    simulator = await startSimulator({ port: simPort, host: '127.0.0.1', logger: logger.child({ component: 'sim' }) });
    config = withSimulatorUserMetadata(loadConfig(simulatorEnv(simulator.url)), simulator);
    console.log(`passgate-sim listening on ${simulator.url}`);
  }

  const passgate = await startPassgate(config, { logger }).catch(async (error: unknown) => {
    await simulator?.close();
    throw error;
  });
  console.log(`passgate listening on ${passgate.url}`);
  console.log(`passgate metrics on ${passgate.metricsUrl}`);
  console.log(config.adminKey ? `passgate admin API on ${passgate.opsUrl}/admin` : 'passgate admin API off (set PASSGATE_ADMIN_KEY to serve it on the metrics port)');
  if (simulator) printHints(passgate.url, passgate.metricsUrl, simulator.url);
  onShutdownSignal(async () => {
    await passgate.close();
    await simulator?.close();
  });
  return 'running';
}

/** A `user_metadata` section without keys: a demo key pair made now, its public key on file at the simulator. */
function withSimulatorUserMetadata(config: Config, simulator: RunningSim): Config {
  if (!config.userMetadata || config.userMetadata.keys.length > 0) return config;
  const demo = withDemoKey(config.userMetadata);
  simulator.state.rules = { ...simulator.state.rules, userMetadata: { certificate: demo.publicKey } };
  return { ...config, userMetadata: demo.config };
}

/** The environment with every upstream pointed at one simulator. */
function simulatorEnv(url: string): NodeJS.ProcessEnv {
  return { ...process.env, ...upstreamsAt(url) };
}

/** What to try next, for the one-command local setup (npm start). */
function printHints(url: string, metricsUrl: string, simUrl: string): void {
  const hints = [
    [`curl ${url}/livez`, 'liveness'],
    [`curl ${url}/readyz`, 'readiness (store reachable)'],
    [`curl ${metricsUrl}`, 'Prometheus metrics'],
    [`curl ${simUrl}/sim/log`, 'every upstream call the simulator received'],
    ['npx passgate demo', 'a scripted app + viewer end to end (its own servers, free ports)'],
  ] as const;
  const width = Math.max(...hints.map(([command]) => command.length));
  console.log(['', 'Try:', ...hints.map(([command, what]) => `  ${command.padEnd(width)}  # ${what}`), 'Ctrl-C stops both.'].join('\n'));
}

async function demo(args: string[]): Promise<Outcome> {
  const { values } = parse(args, { json: { type: 'boolean' } });
  if (values.help) return help();
  // Loaded on demand, like the simulator it starts.
  const { runDemo } = await import('./demo/run.js');
  return runDemo({ json: values.json === true, write: (text) => process.stdout.write(text) });
}

async function sim(args: string[]): Promise<Outcome> {
  const { values } = parse(args, { port: { type: 'string' }, host: { type: 'string' } });
  if (values.help) return help();
  const host = values.host ?? '127.0.0.1';
  const logger = createLogger({ name: 'passgate-sim' });
  const simulator = await startSimulator({ port: portOption(values.port, '--port', 8081), host, logger });
  console.log(`passgate-sim listening on ${displayUrl(host, Number(new URL(simulator.url).port))}`);
  onShutdownSignal(() => simulator.close());
  return 'running';
}

function configCommand(args: string[]): Outcome {
  const { values, positionals } = parse(args, {}, true);
  if (values.help) return help();
  if (positionals.length !== 1 || positionals[0] !== 'check') throw new UsageError('usage: passgate config check');
  console.log(JSON.stringify(describeConfig(loadConfig(process.env)), null, 2));
  return 0;
}

function tokenCommand(args: string[]): Outcome {
  const [subcommand, ...rest] = args;
  if (subcommand === 'mint') return mintToken(rest);
  if (subcommand === 'verify') return verifyToken(rest);
  if (subcommand === '--help' || subcommand === '-h') return help();
  throw new UsageError('usage: passgate token mint … | passgate token verify … (see --help)');
}

/** The flag behind each mint input, so a bad value is reported by the name the user typed. */
const mintFlags: Record<keyof MintInput, string> = {
  siteId: '--site-id',
  siteKey: '--site-key',
  accessKey: '--access-key',
  drmType: '--drm-type',
  userId: '--user-id',
  cid: '--cid',
  policy: '--policy',
  timestamp: '--timestamp',
  responseFormat: '--response-format',
  keyRotation: '--key-rotation',
  policyField: '--policy',
};

/** SPEC §10: prints only the base64 token on stdout. */
function mintToken(args: string[]): Outcome {
  const text = { type: 'string' } as const;
  const { values } = parse(args, {
    'site-id': text,
    'site-key': text,
    'access-key': text,
    'drm-type': text,
    'user-id': text,
    cid: text,
    policy: text,
    timestamp: text,
    'response-format': text,
    'key-rotation': { type: 'boolean' },
  });
  if (values.help) return help();
  const required = (flag: 'site-id' | 'site-key' | 'access-key' | 'drm-type' | 'user-id' | 'cid' | 'policy'): string => {
    const value = values[flag];
    if (typeof value !== 'string' || value === '') throw new UsageError(`token mint needs --${flag}`);
    return value;
  };
  const input: MintInput = {
    siteId: required('site-id'),
    siteKey: required('site-key'),
    accessKey: required('access-key'),
    drmType: required('drm-type') as MintInput['drmType'],
    userId: required('user-id'),
    cid: required('cid'),
    policy: required('policy'),
    timestamp: values.timestamp ?? Date.now(),
    ...(values['response-format'] !== undefined ? { responseFormat: values['response-format'] as ResponseFormat } : {}),
    ...(values['key-rotation'] ? { keyRotation: true } : {}),
  };
  try {
    process.stdout.write(`${mintLicenseToken(input).token}\n`);
  } catch (error) {
    if (error instanceof LicenseTokenInputError) throw new UsageError(`${mintFlags[error.field]}: ${error.message}`);
    throw error;
  }
  return 0;
}

/** SPEC §10: one JSON object on stdout; exit 0 when valid, 1 when not. */
function verifyToken(args: string[]): Outcome {
  const text = { type: 'string' } as const;
  const { values, positionals } = parse(args, { 'site-key': text, 'access-key': text, now: text, cid: text, 'drm-type': text }, true);
  if (values.help) return help();
  const siteKey = values['site-key'];
  const accessKey = values['access-key'];
  if (siteKey === undefined) throw new UsageError('token verify needs --site-key');
  if (!isSiteKey(siteKey)) throw new UsageError(`--site-key must be 32 bytes (the AES-256 key), got ${Buffer.byteLength(siteKey)}`);
  if (accessKey === undefined || accessKey === '') throw new UsageError('token verify needs --access-key');
  if (positionals.length !== 1) throw new UsageError(`token verify takes exactly one token, got ${positionals.length}`);
  const now = values.now === undefined ? Date.now() : parseTimestamp(values.now);
  if (now === undefined) throw new UsageError(`--now must be a UTC time as YYYY-MM-DDTHH:MM:SSZ, got ${JSON.stringify(values.now)}`);
  const drmType = values['drm-type'];
  if (drmType !== undefined && !isDrmType(drmType)) throw new UsageError(`--drm-type must be one of ${DRM_TYPES.join(', ')}`);
  const outcome = verifyLicenseToken(positionals[0] ?? '', {
    siteKey,
    accessKey,
    now,
    ...(values.cid !== undefined ? { expectedCid: values.cid } : {}),
    ...(drmType !== undefined ? { expectedDrmType: drmType } : {}),
  });
  console.log(JSON.stringify(verificationReport(outcome), null, 2));
  return outcome.valid ? 0 : 1;
}

/** Loaded on demand: the simulator is a separate building that only these commands enter. */
async function startSimulator(opts: { port: number; host: string; logger: Logger }): Promise<RunningSim> {
  const { startSim } = await import('./sim/server.js');
  return startSim(opts);
}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

function parse<O extends Options>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function help(): Outcome {
  process.stdout.write(usage);
  return 0;
}

function portOption(value: string | boolean | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d{1,5}$/.test(value) || port > 65535) {
    throw new UsageError(`${flag} expects a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return port;
}

/** SIGTERM (Kubernetes) or SIGINT (Ctrl-C): drain and exit 0; a second signal exits at once. */
function onShutdownSignal(close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`passgate: shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  const outcome = await run(process.argv.slice(2));
  if (outcome !== 'running') process.exitCode = outcome;
} catch (error) {
  if (error instanceof UsageError || error instanceof AgentUsageError) {
    console.error(`passgate: ${error.message}\n\n${usage}`);
    process.exitCode = 2;
  } else if (error instanceof ConfigError) {
    console.error(error.message);
    process.exitCode = 2;
  } else if (error instanceof StoreUnavailableError) {
    console.error(`passgate: ${error.message}`);
    process.exitCode = 1;
  } else {
    // Start-up failures (a port in use, …): one readable line, no stack trace.
    console.error(`passgate: ${(error as Error).message ?? String(error)}`);
    process.exitCode = 1;
  }
}
