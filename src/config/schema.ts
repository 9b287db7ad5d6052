import { z } from 'zod';
import type { Secret } from './secret.js';

/**
 * Two schemas feed one Config: the environment (deployment knobs) and the YAML file named by
 * PASSGATE_CONFIG (what passgate serves). Messages say what is expected; load.ts adds the
 * variable name or YAML path in front of each.
 */

const portMessage = 'expected a port number from 0 to 65535';

const port = (fallback: number) =>
  z
    .string()
    .regex(/^\d{1,5}$/, { error: portMessage })
    .transform(Number)
    .refine((n) => n <= 65535, { error: portMessage })
    .optional()
    .transform((n) => n ?? fallback);

/** http(s) base URL, kept without a trailing slash so callers can append `/api/v2/…`. */
export const baseUrl = z
  .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
  .transform((url) => url.replace(/\/+$/, ''));

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Only the variables passgate reads; everything else in the environment is ignored. */
export const envSchema = z.object({
  PASSGATE_PORT: port(8080),
  PASSGATE_HOST: z.string().min(1).default('0.0.0.0'),
  PASSGATE_METRICS_PORT: port(9464),
  PASSGATE_DATA_DIR: z.string().min(1).default('./data'),
  PASSGATE_LOG_LEVEL: z.enum(logLevels, { error: `expected one of ${logLevels.join(', ')}` }).default('info'),
  /** Repeated identical warn/error lines: one per kind per this many ms, with a count; 0 = every line. */
  PASSGATE_LOG_SAMPLE_INTERVAL_MS: z
    .string()
    .regex(/^\d{1,7}$/, { error: 'expected milliseconds from 0 to 9999999 (0 = no sampling)' })
    .transform(Number)
    .default(10_000),
  PASSGATE_CONFIG: z.string().min(1).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL' }).optional(),
  /** Redis Cluster seed nodes `host:port,host:port,…` (load.ts parses them). */
  REDIS_CLUSTER_NODES: z.string().optional(),
  /** Sentinels `host:port,…` watching the master named by REDIS_SENTINEL_MASTER. */
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_MASTER: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, { error: 'expected the master name the sentinels monitor (letters, digits, . _ -)' }).optional(),
  /** Password (AUTH) of the Redis servers, for REDIS_URL without one, REDIS_CLUSTER_NODES or REDIS_SENTINELS. */
  REDIS_PASSWORD: z.string().optional(),
  /** Deadline of every store command and (re)connect attempt: a frozen store is a 503 within it. */
  PASSGATE_STORE_TIMEOUT_MS: z
    .string()
    .regex(/^\d{1,6}$/, { error: 'expected milliseconds from 100 to 30000' })
    .transform(Number)
    .refine((n) => n >= 100 && n <= 30_000, { error: 'expected milliseconds from 100 to 30000' })
    .optional()
    .transform((n) => n ?? 2_000),
  /** The keyring: `kid:base64(32 bytes)[:verify][,kid:…]`, the first without `:verify` active (src/infra/keyring.ts). */
  PASSGATE_KEYS: z.string().min(1).optional(),
  /** A mounted file holding the keyring text instead of the variable. */
  PASSGATE_KEYS_FILE: z.string().min(1).optional(),
  /** Comma-separated IPs/CIDRs (or loopback, linklocal, uniquelocal) whose X-Forwarded-For is believed. */
  PASSGATE_TRUSTED_PROXIES: z.string().optional(),
  /** A header a trusted proxy sets to the device's source port (e.g. x-client-port); none by default. */
  PASSGATE_CLIENT_PORT_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, { error: 'expected a header name such as x-client-port' })
    .transform((h) => h.toLowerCase())
    .optional(),
  /** The URL viewers and apps reach passgate at (activation links, redirectUrl); default: the listening URL. */
  PASSGATE_PUBLIC_URL: baseUrl.optional(),
  PASS_BASE_URL: baseUrl.optional(),
  DRM_BASE_URL: baseUrl.optional(),
  ADAPTER_BASE_URL: baseUrl.optional(),
  /** A request's headers and body must arrive within this (ms), else 408; response time (long-polls, SSE) is not counted. */
  PASSGATE_REQUEST_TIMEOUT_MS: z
    .string()
    .regex(/^\d+$/, { error: 'expected milliseconds, e.g. 30000' })
    .transform(Number)
    .refine((n) => n >= 500 && n <= 600_000, { error: 'expected milliseconds from 500 to 600000' })
    .optional()
    .transform((n) => n ?? 30_000),
  /** The operator credential for /admin routes on the ops listener (Authorization: Bearer …); absent ⇒ the admin API is off. */
  // Whitespace is no secret: 32 characters that are not whitespace, and none around the key
  // (HTTP trims header values, so a key with surrounding whitespace could never be sent).
  PASSGATE_ADMIN_KEY: z
    .string()
    .refine((key) => key.replace(/\s/g, '').length >= 32, { error: 'expected at least 32 characters other than whitespace (generate one: openssl rand -base64 32)' })
    .refine((key) => key.trim() === key, { error: 'expected no whitespace at the start or end (an Authorization header cannot carry it)' })
    .optional(),
});
export type EnvSettings = z.output<typeof envSchema>;

/** Which environment variable overrides which upstream in the file. */
export const upstreamEnv = { pass: 'PASS_BASE_URL', drm: 'DRM_BASE_URL', adapter: 'ADAPTER_BASE_URL' } as const;
export type UpstreamName = keyof typeof upstreamEnv;

export { secretRef, type SecretRef } from './secret-ref.js';
import { secretRef } from './secret-ref.js';
import { catalogueSchema, drmSchema, policiesSchema, type DrmConfig } from './drm.js';
import { agentSchema, type AgentConfig } from './agent.js';
import { userMetadataSchema, type UserMetadataConfig } from './user-metadata.js';

export type { CatalogueEntry, DrmConfig, DrmMode } from './drm.js';

const upstream = z.strictObject({ base_url: baseUrl.optional() });

const app = z.strictObject({
  platform: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, { error: 'expected a lowercase platform name such as tvos, roku, androidtv, web' }),
  app_key: secretRef,
  software_statement: secretRef,
  redirect_uri: z.url({ error: 'expected a URI such as adobepass://com.programmer' }).optional(),
});

const positiveInt = z.number().int().positive();

/** How passgate's HTTP client treats every upstream (SPEC §6: DNS, retries, breaker). */
const upstreamClient = z
  .strictObject({
    // The upstream requires DNS caching of at most 30 s (adobe-pass.md §1).
    dns_max_ttl_seconds: z.number().int().min(0).max(30, { error: 'expected at most 30 (the upstream requires a DNS cache of ≤ 30 s)' }).default(30),
    connect_timeout_ms: positiveInt.default(2_000),
    request_timeout_ms: positiveInt.default(8_000),
    max_retries: z.number().int().min(0).max(2, { error: 'expected at most 2 retries' }).default(2),
    /** One call's whole budget, retries and backoff included: a hung upstream is a 503 within it. */
    call_deadline_ms: positiveInt.default(10_000),
    breaker: z
      .strictObject({ consecutive_failures: positiveInt.default(5), half_open_after_ms: positiveInt.default(10_000) })
      .default({ consecutive_failures: 5, half_open_after_ms: 10_000 }),
  })
  .default({ dns_max_ttl_seconds: 30, connect_timeout_ms: 2_000, request_timeout_ms: 8_000, max_retries: 2, call_deadline_ms: 10_000, breaker: { consecutive_failures: 5, half_open_after_ms: 10_000 } });

/** passgate's mirror of the upstream throttle per device IP (adobe-pass.md §8). */
const throttle = z
  .strictObject({
    rate_per_second: z.number().positive().default(1),
    burst: z.number().int().min(0).default(10),
    /** Wait up to this long for the next token before answering the app 429. */
    max_wait_ms: z.number().int().min(0).max(5_000).default(1_000),
  })
  .default({ rate_per_second: 1, burst: 10, max_wait_ms: 1_000 });

const dcr = z
  .strictObject({
    /** An access token is treated as expired this long before its expires_in. */
    token_expiry_skew_seconds: z.number().int().min(0).default(60),
    /** Within this long of expiry a call still uses the token but refreshes it in the background. */
    token_refresh_ahead_seconds: z.number().int().min(0).default(600),
    /** Re-registrations after invalid_client, per app across the fleet: a one-time `burst`, then `per_minute`. */
    reregistrations: z
      .strictObject({ burst: positiveInt.default(100), per_minute: positiveInt.default(600) })
      .default({ burst: 100, per_minute: 600 }),
  })
  .default({ token_expiry_skew_seconds: 60, token_refresh_ahead_seconds: 600, reregistrations: { burst: 100, per_minute: 600 } });

const devices = z
  .strictObject({
    /** Lifetime of the device tokens passgate issues; apps renew through POST /v1/devices. */
    token_ttl_seconds: z.number().int().min(60).max(30 * 86_400).default(86_400),
    /** POST /v1/devices per client IP: a bucket of `burst`, refilled at `per_minute`. */
    registrations_per_minute: positiveInt.default(20),
    registration_burst: positiveInt.default(20),
    /**
     * How long a replica serves a device's record and token generation from memory: the bound on
     * how long a revoked token or a replaced record can still be used on a replica that missed the
     * fleet-wide purge (every replica that hears it drops its copy at once). 0 reads the store on
     * every request.
     */
    l1_ms: z.number().int().min(0).max(5_000, { error: 'expected at most 5000 (the staleness bound after a revocation)' }).default(1_000),
  })
  .default({ token_ttl_seconds: 86_400, registrations_per_minute: 20, registration_burst: 20, l1_ms: 1_000 });

/** A refilling limit: `burst` at once, then `per_minute`. */
const limit = (burst: number, perMinute: number) =>
  z.strictObject({ burst: positiveInt.default(burst), per_minute: positiveInt.default(perMinute) }).default({ burst, per_minute: perMinute });

const signin = z
  .strictObject({
    /** Sent upstream as domainName; must be one of the service provider's registered domains. */
    domain_name: z.string().min(1).default('adobe.com'),
    /** profiles/code polling interval per code across the fleet (adobe-pass.md §9: 3–5 s or more). */
    poll_interval_ms: z.number().int().min(3_000, { error: 'expected at least 3000 (the upstream asks for 3–5 s or more)' }).max(30_000).default(5_000),
    /** Upstream configuration (MVPD list) cache per platform. */
    configuration_ttl_ms: positiveInt.default(120_000),
    /** MVPD ids never shown in the picker (test MVPDs). */
    hidden_mvpds: z.array(z.string()).default([]),
    /** Hide TempPass MVPDs from the picker. */
    hide_temppass: z.boolean().default(true),
    /** Long-polls and event streams waiting on one replica at most (bounded memory); past it they answer at once. */
    max_waiters: positiveInt.default(10_000),
    /**
     * After a Permit the device's profiles are read again (checklist: MVPDs may update attributes
     * at authorization), at most once per this interval per device (0: after every Permit). Each
     * re-read is an upstream call under the device IP's 1 call/s throttle.
     */
    profile_reread_interval_ms: z.number().int().min(0).max(3_600_000).default(60_000),
  })
  .default({ domain_name: 'adobe.com', poll_interval_ms: 5_000, configuration_ttl_ms: 120_000, hidden_mvpds: [], hide_temppass: true, max_waiters: 10_000, profile_reread_interval_ms: 60_000 });

const entitlement = z
  .strictObject({
    /** Resources per upstream preauthorize call (adobe-pass.md §4.8: "usually up to 5"). */
    preauthorize_chunk: positiveInt.default(5),
    /** Cap on how long a cached preauthorize permit is reused (never beyond its own validity). */
    preauthorize_cache_max_ms: positiveInt.default(300_000),
    /** Permit record lifetime when the decision carries no notAfter. */
    permit_cap_ms: positiveInt.default(3_600_000),
    /**
     * A Permit (and a cached preauthorize permit) with `source: degradation` lives at most this long:
     * the bound on how long a degraded grant outlives its degradation rule being lifted.
     */
    degraded_permit_max_ms: positiveInt.default(300_000),
  })
  .default({ preauthorize_chunk: 5, preauthorize_cache_max_ms: 300_000, permit_cap_ms: 3_600_000, degraded_permit_max_ms: 300_000 });

/** WCAG 2.x relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

/** Contrast ratio of `#rrggbb` against white (the activation pages put white text on the accent). */
export const contrastWithWhite = (hex: string) => 1.05 / (luminance(hex) + 0.05);

const brandDefaults = { name: 'passgate', accent_color: '#0b57d0' };

/** The programmer's brand on the second-screen pages (plain defaults for the demo). */
const brand = z
  .strictObject({
    /** Shown in the page header and titles' context, e.g. "Acme TV". */
    name: z.string().trim().min(1).max(60).default(brandDefaults.name),
    /** An image URL (https, or http for a local demo); the pages' CSP img-src then allows its origin. */
    logo_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// image URL' }).optional(),
    /** Buttons, header and marks; white text sits on it, so it must keep 4.5:1 contrast with white (WCAG AA). */
    accent_color: z
      .string()
      .regex(/^#[0-9a-fA-F]{6}$/, { error: 'expected a colour as #rrggbb' })
      .refine((hex) => contrastWithWhite(hex) >= 4.5, { error: 'expected a colour dark enough for white text (contrast with white at least 4.5:1)' })
      .default(brandDefaults.accent_color),
  })
  .default(brandDefaults);

const activation = z
  .strictObject({
    /** The app whose software statement the second-screen pages use upstream (default: the first app). */
    app: z.string().optional(),
    attempts_per_ip: limit(10, 6),
    attempts_global: limit(1_000, 600),
    brand,
  })
  .default({ attempts_per_ip: { burst: 10, per_minute: 6 }, attempts_global: { burst: 1_000, per_minute: 600 }, brand: brandDefaults });

const appId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, { error: 'expected an app id of letters, digits, _ and -' });

/**
 * The YAML file. Strict objects so a misspelt key is an error, not a silently ignored setting.
 * `catalogue`, `policies` and `drm` are the DRM license gate's (config/drm.ts).
 */
export const fileSchema = z.strictObject({
  service_provider: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a service provider id such as REF30' }),
  upstreams: z
    .strictObject({ pass: upstream.optional(), drm: upstream.optional(), adapter: upstream.optional() })
    .optional(),
  apps: z.record(appId, app),
  upstream_client: upstreamClient,
  throttle,
  dcr,
  devices,
  signin,
  entitlement,
  activation,
  catalogue: catalogueSchema,
  policies: policiesSchema,
  drm: drmSchema,
  agent: agentSchema,
  user_metadata: userMetadataSchema,
});
export type ConfigFile = z.output<typeof fileSchema>;

export interface AppConfig {
  id: string;
  /** Upstream configuration is cached per platform (SPEC §6). */
  platform: string;
  /** The X-App-Key the app sends; unique across apps. */
  appKey: Secret;
  /** The DCR software statement (a JWT) for this app. */
  softwareStatement: Secret;
  redirectUri?: string;
}

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** A Redis deployment that is not one URL; the password is masked wherever the config is printed. */
export type RedisTopologyConfig =
  | { kind: 'cluster'; nodes: RedisNodeAddress[]; password?: Secret }
  | { kind: 'sentinel'; sentinels: RedisNodeAddress[]; masterName: string; password?: Secret };

/** The one typed configuration object that main.ts builds everything from. */
export interface Config {
  http: { host: string; port: number; /** Deadline for receiving a whole request (headers and body), ms. */ requestTimeoutMs: number };
  metrics: { port: number };
  logLevel: LogLevel;
  /** PASSGATE_LOG_SAMPLE_INTERVAL_MS (src/infra/log-sampler.ts). */
  logSampleIntervalMs: number;
  /** Absolute path of the embedded store's directory (unused when redisUrl is set). */
  dataDir: string;
  /** REDIS_URL (with REDIS_PASSWORD put in, if given). Absent, and no `redis` ⇒ embedded store. */
  redisUrl?: Secret;
  /** REDIS_CLUSTER_NODES, or REDIS_SENTINELS + REDIS_SENTINEL_MASTER (never together with redisUrl). */
  redis?: RedisTopologyConfig;
  /** PASSGATE_STORE_TIMEOUT_MS: every store command and connect attempt answers (or fails) within it. */
  store: { timeoutMs: number };
  /** Absolute path of the YAML file that was loaded. */
  configFile: string;
  serviceProvider: string;
  upstreams: Record<UpstreamName, { baseUrl: string }>;
  apps: Record<string, AppConfig>;
  /** The keyring text (`kid:base64key,…`); absent ⇒ the embedded store keeps a generated one. */
  keys?: Secret;
  /** proxy-addr trust list for X-Forwarded-For (empty: only the socket peer is believed). */
  trustedProxies: string[];
  clientPortHeader?: string;
  upstreamClient: {
    dnsMaxTtlSeconds: number;
    connectTimeoutMs: number;
    requestTimeoutMs: number;
    callDeadlineMs: number;
    maxRetries: number;
    breaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  };
  throttle: { ratePerSecond: number; burst: number; maxWaitMs: number };
  dcr: {
    tokenExpirySkewSeconds: number;
    tokenRefreshAheadSeconds: number;
    /** Fleet-wide bucket per app for DCR re-registrations after invalid_client. */
    reregistrations: { burst: number; perMinute: number };
  };
  devices: { tokenTtlSeconds: number; registrationsPerMinute: number; registrationBurst: number; l1Ms: number };
  /** Set when PASSGATE_PUBLIC_URL is; otherwise main.ts uses the listening URL. */
  publicUrl?: string;
  signin: { domainName: string; pollIntervalMs: number; configurationTtlMs: number; hiddenMvpds: string[]; hideTempPass: boolean; maxWaiters: number; profileRereadIntervalMs: number };
  entitlement: { preauthorizeChunk: number; preauthorizeCacheMaxMs: number; permitCapMs: number; degradedPermitMaxMs: number };
  /** Absent when the file has no `drm` section: licenses are off (authorize with `drm` answers 400). */
  drm?: DrmConfig;
  /** Absent when the file has no `agent` section: /agent is 404 (SPEC §5). */
  agent?: AgentConfig;
  /** PASSGATE_ADMIN_KEY; absent ⇒ the admin API (ops listener) is not mounted: 404. */
  adminKey?: Secret;
  /** Absent when the file has no `user_metadata` section: apps see the plain attributes, no encrypted one. */
  userMetadata?: UserMetadataConfig;
  activation: {
    /** An app id from `apps`. */
    app: string;
    attemptsPerIp: { burst: number; perMinute: number };
    attemptsGlobal: { burst: number; perMinute: number };
    brand: ActivationBrand;
  };
}

/** activation.brand: what the second-screen pages show of the programmer. */
export interface ActivationBrand {
  name: string;
  logoUrl?: string;
  /** `#rrggbb`, at least 4.5:1 against white. */
  accentColor: string;
}
