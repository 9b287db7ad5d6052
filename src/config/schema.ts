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
  PASSGATE_CONFIG: z.string().min(1).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL' }).optional(),
  PASS_BASE_URL: baseUrl.optional(),
  DRM_BASE_URL: baseUrl.optional(),
  ADAPTER_BASE_URL: baseUrl.optional(),
});
export type EnvSettings = z.output<typeof envSchema>;

/** Which environment variable overrides which upstream in the file. */
export const upstreamEnv = { pass: 'PASS_BASE_URL', drm: 'DRM_BASE_URL', adapter: 'ADAPTER_BASE_URL' } as const;
export type UpstreamName = keyof typeof upstreamEnv;

/** A secret in the file: a literal, `{ env: NAME }` or `{ file: /path }` (a mounted secret). */
export const secretRef = z.union(
  [
    z.string().min(1),
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }),
    z.strictObject({ file: z.string().min(1) }),
  ],
  { error: 'expected a non-empty string, { env: NAME } or { file: /path/to/secret }' },
);
export type SecretRef = z.output<typeof secretRef>;

const upstream = z.strictObject({ base_url: baseUrl.optional() });

const app = z.strictObject({
  platform: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, { error: 'expected a lowercase platform name such as tvos, roku, androidtv, web' }),
  app_key: secretRef,
  software_statement: secretRef,
  redirect_uri: z.url({ error: 'expected a URI such as adobepass://com.programmer' }).optional(),
});

const appId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, { error: 'expected an app id of letters, digits, _ and -' });

/**
 * The YAML file. Strict objects so a misspelt key is an error, not a silently ignored setting.
 * Later issues add `catalogue`, `policies` and `drm` here.
 */
export const fileSchema = z.strictObject({
  service_provider: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a service provider id such as REF30' }),
  upstreams: z
    .strictObject({ pass: upstream.optional(), drm: upstream.optional(), adapter: upstream.optional() })
    .optional(),
  apps: z.record(appId, app),
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

/** The one typed configuration object that main.ts builds everything from. */
export interface Config {
  http: { host: string; port: number };
  metrics: { port: number };
  logLevel: LogLevel;
  /** Absolute path of the embedded store's directory (unused when redisUrl is set). */
  dataDir: string;
  /** Absent ⇒ embedded store. */
  redisUrl?: Secret;
  /** Absolute path of the YAML file that was loaded. */
  configFile: string;
  serviceProvider: string;
  upstreams: Record<UpstreamName, { baseUrl: string }>;
  apps: Record<string, AppConfig>;
}
