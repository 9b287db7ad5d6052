import { z } from 'zod';
import { checkPolicyV2, licensePolicyV2Schema, type LicensePolicyV2 } from '../drm/pallycon/policy-schema.js';
import { CONTENT_ID_PATTERN } from '../drm/pallycon/token.js';
import { secretRef } from './secret-ref.js';
import type { Secret } from './secret.js';

/**
 * The DRM part of the YAML file (SPEC §4): the catalogue (resource → content ids → policy),
 * the named license policies (PallyCon/DoveRunner policy v2, drm.md §1.4) and the license
 * service settings. Policy problems carry the token samples' validation codes (1000–1047, 2001)
 * so an operator can look them up in the vendor's table.
 */

const contentIdPattern = z
  .string()
  // A bare '*' would let a resource license every content id: the gate's content check would be void.
  .refine((value) => CONTENT_ID_PATTERN.test(value.endsWith('*') ? value.slice(0, -1) : value), {
    error: "expected a content id (letters, digits, '.', '_', '-'; at most 200) or a non-empty prefix ending in '*'",
  });

const policyName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, { error: 'expected a policy name of letters, digits, _ and -' });

const catalogueEntry = z.strictObject({
  /** Exact content ids, or prefixes written `ref30-*`. */
  content_ids: z.array(contentIdPattern).min(1, { error: 'expected at least one content id or prefix' }),
  policy: policyName,
});

export const catalogueSchema = z.record(z.string().min(1).max(4096), catalogueEntry).default({});

/**
 * One policy's problems, by the codec's own schema and with its codes; unknown fields are named
 * one by one at their own path (zod reports them at the parent) and an old policy_version says why.
 */
function policyProblems(value: unknown): Array<{ path: PropertyKey[]; message: string }> {
  const check = checkPolicyV2(value);
  if (check.ok) return [];
  const parsed = licensePolicyV2Schema.safeParse(value);
  // The same schema and value: parsed's issues are check's, in the same order.
  const issues = parsed.success ? [] : parsed.error.issues;
  return issues.flatMap((issue, i) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...issue.path, key], message: 'unknown field in a license policy v2 (v1 fields such as limit are refused rather than ignored)' }));
    }
    if (issue.path.length === 1 && issue.path[0] === 'policy_version') return [{ path: issue.path, message: 'expected 2 (only license policy v2 is supported)' }];
    const code = check.issues[i]?.code;
    return [{ path: issue.path, message: `${issue.message}${code ? ` (license token error ${code})` : ''}` }];
  });
}

export const policiesSchema = z
  .record(policyName, z.unknown())
  .default({})
  .superRefine((policies, ctx) => {
    for (const [name, value] of Object.entries(policies)) {
      for (const problem of policyProblems(value)) ctx.addIssue({ code: 'custom', path: [name, ...problem.path], message: problem.message });
    }
  });

const hexBytes = (bytes: number) => new RegExp(`^[0-9A-Fa-f]{${bytes * 2}}$`);

export const drmSchema = z
  .strictObject({
    /**
     * What /v1/authorize puts in `license`: `token` (a PallyCon license token the app sends to
     * the license service), `proxy` (passgate's own /v1/license/{system} URL; the app sends its
     * device token), `callback` (legacy pallycon-customdata-v2; the license service calls back).
     */
    mode: z.enum(['token', 'proxy', 'callback']).default('token'),
    /** drm.md §1.2: the console's site id ("4 uppercase alphabet"). */
    site_id: z.string().regex(/^[A-Z0-9]{4}$/, { error: 'expected the 4-character site id (uppercase letters and digits) from the license service console (error 1002)' }),
    /** 32 bytes as UTF-8: the AES-256 key itself (drm.md §1.3). */
    site_key: secretRef,
    access_key: secretRef,
    /** The license URL apps use in token and callback modes; default `<drm upstream>/ri/licenseManager.do`. */
    license_url: z.url({ protocol: /^https?$/ }).optional(),
    /** The license service accepts a token for this long after its timestamp (console setting; drm.md §1.2). */
    token_validity_seconds: z.number().int().min(30).max(86_400).default(600),
    /** How long one replica may reuse a Permit it read (bounded staleness after a purge it missed). */
    permit_l1_ms: z.number().int().min(0).max(5_000, { error: 'expected at most 5000 (the staleness bound after a logout)' }).default(1_000),
    fairplay_certificate_ttl_ms: z.number().int().positive().default(3_600_000),
    widevine: z
      .strictObject({
        /** Who answers POST /v1/license/widevine: the PallyCon service, or Widevine's cloud directly (drm.md §3). */
        service: z.enum(['pallycon', 'widevine_cloud']).default('pallycon'),
        provider: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
        signing_key: secretRef.optional(),
        signing_iv: secretRef.optional(),
        /** Appended to the drm upstream; `{provider}` is replaced. */
        license_path: z.string().startsWith('/').default('/cenc/getlicense/{provider}'),
      })
      .default({ service: 'pallycon', license_path: '/cenc/getlicense/{provider}' }),
    playready: z
      .strictObject({
        /**
         * Where the RevInfo list is downloaded from (Microsoft: https://aka.ms/revinfo), or a path on
         * the drm upstream (the simulator's /playready/revinfo.xml). Absent: not fetched.
         */
        revinfo_url: z
          .union([z.url({ protocol: /^https?$/ }), z.string().regex(/^\/\S*$/)], { error: 'expected an http(s) URL or a path starting with /' })
          .optional(),
        /** "must update … once a week" (drm.md §4). */
        revinfo_refresh_hours: z.number().positive().max(168, { error: 'expected at most 168 (PlayReady requires weekly updates)' }).default(168),
      })
      .default({ revinfo_refresh_hours: 168 }),
  })
  .optional();

export type DrmFile = z.output<typeof drmSchema>;
export type CatalogueFile = z.output<typeof catalogueSchema>;

export type DrmMode = 'token' | 'proxy' | 'callback';

export interface CatalogueEntry {
  resource: string;
  exact: string[];
  prefixes: string[];
  policy: string;
}

export interface DrmConfig {
  mode: DrmMode;
  siteId: string;
  siteKey: Secret;
  accessKey: Secret;
  licenseUrl: string;
  tokenValiditySeconds: number;
  permitL1Ms: number;
  fairplayCertificateTtlMs: number;
  /** signingKey / signingIv: hex text, kept as Secrets so `config check` masks them. */
  widevine: { service: 'pallycon' | 'widevine_cloud'; provider?: string; signingKey?: Secret; signingIv?: Secret; licensePath: string };
  playready: { revinfoUrl?: string; revinfoRefreshMs: number };
  catalogue: Record<string, CatalogueEntry>;
  /** Policy JSON text per name, serialised once (what is encrypted into tokens). */
  policies: Record<string, { policy: LicensePolicyV2; text: string }>;
}

type Resolve = (ref: z.output<typeof secretRef>, path: string) => Secret | undefined;

/** Cross-field checks and secret resolution; problems are pushed as `path: message` lines. */
export function resolveDrmConfig(
  file: { drm?: DrmFile; catalogue: CatalogueFile; policies: Record<string, unknown> },
  drmBaseUrl: string | undefined,
  resolveSecret: Resolve,
  problems: string[],
): DrmConfig | undefined {
  const { drm, catalogue, policies } = file;
  for (const [resource, entry] of Object.entries(catalogue)) {
    if (!Object.hasOwn(policies, entry.policy)) {
      problems.push(`catalogue.${resource}.policy: unknown policy ${JSON.stringify(entry.policy)} (expected one of: ${Object.keys(policies).join(', ') || 'no policies defined'})`);
    }
  }
  if (!drm) {
    if (Object.keys(catalogue).length > 0) problems.push('drm: required when a catalogue is configured (site_id, site_key, access_key)');
    return undefined;
  }
  const siteKey = resolveSecret(drm.site_key, 'drm.site_key');
  if (siteKey && Buffer.byteLength(siteKey.reveal(), 'utf8') !== 32) problems.push('drm.site_key: expected 32 bytes (the console site key; error 1004)');
  const accessKey = resolveSecret(drm.access_key, 'drm.access_key');

  const widevine: DrmConfig['widevine'] = { service: drm.widevine.service, licensePath: drm.widevine.license_path };
  if (drm.widevine.provider) widevine.provider = drm.widevine.provider;
  if (drm.widevine.signing_key) {
    const key = resolveSecret(drm.widevine.signing_key, 'drm.widevine.signing_key');
    if (key && !hexBytes(32).test(key.reveal())) problems.push('drm.widevine.signing_key: expected 64 hex characters (the 32-byte provider key)');
    else if (key) widevine.signingKey = key;
  }
  if (drm.widevine.signing_iv) {
    const iv = resolveSecret(drm.widevine.signing_iv, 'drm.widevine.signing_iv');
    if (iv && !hexBytes(16).test(iv.reveal())) problems.push('drm.widevine.signing_iv: expected 32 hex characters (the 16-byte provider IV)');
    else if (iv) widevine.signingIv = iv;
  }
  if (widevine.service === 'widevine_cloud') {
    for (const field of ['provider', 'signing_key', 'signing_iv'] as const) {
      if (!drm.widevine[field]) problems.push(`drm.widevine.${field}: required when drm.widevine.service is widevine_cloud`);
    }
  }
  const licenseUrl = drm.license_url ?? (drmBaseUrl ? `${drmBaseUrl}/ri/licenseManager.do` : undefined);
  if (!licenseUrl) problems.push('drm.license_url: required (or set upstreams.drm.base_url / DRM_BASE_URL)');
  const revinfo = drm.playready.revinfo_url;
  const revinfoUrl = revinfo?.startsWith('/') ? (drmBaseUrl ? `${drmBaseUrl}${revinfo}` : undefined) : revinfo;
  if (revinfo && !revinfoUrl) problems.push('drm.playready.revinfo_url: a path needs upstreams.drm.base_url (or DRM_BASE_URL)');
  if (!siteKey || !accessKey || !licenseUrl) return undefined;

  const resolvedPolicies: DrmConfig['policies'] = {};
  for (const [name, value] of Object.entries(policies)) {
    const check = checkPolicyV2(value);
    if (check.ok) resolvedPolicies[name] = { policy: check.policy, text: JSON.stringify(value) };
  }
  const resolvedCatalogue: DrmConfig['catalogue'] = {};
  for (const [resource, entry] of Object.entries(catalogue)) {
    resolvedCatalogue[resource] = {
      resource,
      exact: entry.content_ids.filter((id) => !id.endsWith('*')),
      prefixes: entry.content_ids.filter((id) => id.endsWith('*')).map((id) => id.slice(0, -1)),
      policy: entry.policy,
    };
  }
  return {
    mode: drm.mode,
    siteId: drm.site_id,
    siteKey,
    accessKey,
    licenseUrl,
    tokenValiditySeconds: drm.token_validity_seconds,
    permitL1Ms: drm.permit_l1_ms,
    fairplayCertificateTtlMs: drm.fairplay_certificate_ttl_ms,
    widevine,
    playready: {
      ...(revinfoUrl ? { revinfoUrl } : {}),
      revinfoRefreshMs: Math.round(drm.playready.revinfo_refresh_hours * 3_600_000),
    },
    catalogue: resolvedCatalogue,
    policies: resolvedPolicies,
  };
}
