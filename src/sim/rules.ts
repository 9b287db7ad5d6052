import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { isSiteKey } from '../drm/pallycon/crypto.js';
import { DEFAULT_TOKEN_VALIDITY_SECONDS } from '../drm/pallycon/token.js';
import { isKnownCode, type EnhancedCode } from './pass/errors.js';

/**
 * The simulator's configurable world: service providers, MVPDs, entitlement rules, TTLs,
 * the throttle and the fault knobs. `POST /sim/config` replaces any top-level part of it.
 */

/**
 * The Degradation API's rules (features-premium/degraded-access/degradation-api-overview.md):
 * AuthNAll auto-authenticates (and so auto-authorizes), AuthZAll auto-authorizes, AuthZNone denies.
 */
export const degradationRule = z.enum(['none', 'AuthNAll', 'AuthZAll', 'AuthZNone']);
export type DegradationRule = z.infer<typeof degradationRule>;

const mvpd = z.strictObject({
  id: z.string().min(1),
  displayName: z.string().min(1),
  logoUrl: z.url(),
  /** Integration with the service provider is active; disabled ones vanish from configuration (§4.1). */
  enabled: z.boolean().default(true),
  isTempPass: z.boolean().default(false),
  /** A test MVPD: listed by the upstream, hidden by passgate's MVPD picker. */
  isTest: z.boolean().default(false),
  /** The MVPD has a logout endpoint (logout/interactive) or not (complete/none), §4.9. */
  hasLogoutEndpoint: z.boolean().default(true),
  /** AuthN TTL of a regular profile (per integration in the real service, §9). */
  authnTtlMs: z.number().int().positive().default(24 * 3600_000),
  /** AuthZ TTL: decision notBefore..notAfter. */
  authzTtlMs: z.number().int().positive().default(3600_000),
  /** TempPass only: how long the temporary profile lasts. */
  tempPassDurationMs: z.number().int().positive().default(3 * 60_000),
  /**
   * Promotional TempPass only: how many resources (VOD titles) the trial may authorize; absent for a
   * basic TempPass. A promotional one needs AP-TempPass-Identity (temp-pass-feature.md).
   */
  tempPassMaxResources: z.number().int().positive().optional(),
  /**
   * TempPass only: its configuration is broken in the TVE Dashboard. Decisions answer the item error
   * and profiles the 500 invalid_configuration_temporary_access (the "Invalid Configuration" samples).
   */
  tempPassMisconfigured: z.boolean().default(false),
  /** Premium degradation rule applied to this integration (§10); POST /sim/config `{degrade}` sets it at run time. */
  degradation: degradationRule.default('none'),
  /**
   * The id a partner framework knows this MVPD by (the configuration's platformMappingId; Apple's
   * accountProviderIdentifier, apple-sso-cookbook-rest-api-v2.md); absent: the MVPD id itself.
   */
  platformMappingId: z.string().min(1).optional(),
});

const entitlement = z.strictObject({
  mvpd: z.string().default('*'),
  /** Resource id (MRSS resources match on their channel title), or '*'. */
  resource: z.string().default('*'),
  /** Profile userID, or '*'. */
  user: z.string().default('*'),
  decision: z.enum(['permit', 'deny', 'error']),
  /** Enhanced error code for deny/error (per-item error on HTTP 200): one the error table documents. */
  error: z
    .string()
    .refine(isKnownCode, { message: 'not a code of the REST API v2 enhanced error table' })
    .transform((code) => code as EnhancedCode)
    .optional(),
  details: z.string().optional(),
  /** Apply only to the next N matching decisions, then fall through (for retry items). */
  times: z.number().int().positive().optional(),
});

/** The demo license-service site (drm.md §1): obviously fake keys, 32 bytes each. */
export const DEMO_DRM_SITE = {
  siteId: 'DEMO',
  siteKey: 'passgate-demo-site-key-not-real!',
  accessKey: 'passgate-demo-access-key-notreal',
} as const;

/** base64 of a text that says what it is: no FairPlay client can use it. */
export const FAKE_FAIRPLAY_CERTIFICATE = Buffer.from(
  'passgate-sim FAKE FairPlay Streaming certificate: not issued by Apple, for tests only\n',
).toString('base64');

/** A site of the PallyCon-style license service: the console's keys and settings (drm.md §1.2–1.5). */
const drmSite = z.strictObject({
  siteKey: z.string().refine(isSiteKey, { message: 'the site key must be 32 bytes (UTF-8)' }),
  accessKey: z.string().min(1),
  /** false: every request answers 1004 "The Site ID's service is stopped." */
  enabled: z.boolean().default(true),
  /** "Token is valid for 600 seconds after the timestamp. (can be adjusted on Console site)". */
  tokenValiditySeconds: z.int().positive().default(DEFAULT_TOKEN_VALIDITY_SECONDS),
  /** base64 FPS certificate served by GET /ri/fpsKeyManager.do; null: no FairPlay service (7301). */
  fairplayCertificate: z.base64().nullable().default(FAKE_FAIRPLAY_CERTIFICATE),
  /** The console's "Content usage information URL" (drm.md §1.6): legacy custom data is authorized by calling it; absent: 8705. */
  callbackUrl: z.url({ protocol: /^https?$/ }).optional(),
});

/** The demo Widevine cloud provider (drm.md §3.2): key and IV are the hex of ASCII texts saying they are fake. */
export const DEMO_WIDEVINE_PROVIDER = {
  provider: 'passgate_demo',
  /** "passgate-demo-widevine-not-real!" */
  key: '70617373676174652d64656d6f2d7769646576696e652d6e6f742d7265616c21',
  /** "demo-iv-not-real" */
  iv: '64656d6f2d69762d6e6f742d7265616c',
} as const;

/** A provider of the Widevine cloud license service: its AES signing key (32 bytes) and IV (16 bytes), hex. */
const widevineProvider = z.strictObject({
  key: z.string().regex(/^[0-9A-Fa-f]{64}$/, { message: 'the key should be 32 bytes of hex' }),
  iv: z.string().regex(/^[0-9A-Fa-f]{32}$/, { message: 'the IV should be 16 bytes of hex' }),
});

/** POST /cenc/getlicense/:provider (src/sim/drm/widevine-cloud.ts). */
const widevineRules = z
  .strictObject({
    providers: z
      .record(z.string().min(1), widevineProvider)
      .prefault({ [DEMO_WIDEVINE_PROVIDER.provider]: { key: DEMO_WIDEVINE_PROVIDER.key, iv: DEMO_WIDEVINE_PROVIDER.iv } }),
    /** Ids a challenge names with the ASCII marker `device=<id>`: answered revoked (internal_status 127). */
    revokedDevices: z.array(z.string()).default([]),
  })
  .prefault({});

const drmRules = z
  .strictObject({
    sites: z.record(z.string().min(1), drmSite).prefault({ [DEMO_DRM_SITE.siteId]: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey } }),
    /** Token user_ids whose device the Widevine proxy reports revoked: 7110 after a valid token. */
    revokedUserIds: z.array(z.string()).default([]),
    /** The Widevine cloud license service ("Widevine direct mode", drm.md §3). */
    widevine: widevineRules,
    /** The RevInfo download (GET /playready/revinfo.xml, src/sim/drm/revinfo.ts). */
    playready: z
      .strictObject({
        /** Bump it and the document (and its ETag, Last-Modified) changes. */
        revinfoVersion: z.int().nonnegative().default(1),
        /** 'html': a 200 HTML page instead; 'truncated': a 200 cut-off document. */
        revinfoFault: z.enum(['none', 'html', 'truncated']).default('none'),
      })
      .prefault({}),
  })
  .prefault({});

/**
 * Single sign-on (rest-api-v2-single-sign-on-*-flows.md). `partners`: partner SSO per partner name of
 * the path, with the MVPDs boarded for it (absent: all); a disabled partner or an MVPD not boarded
 * falls back with `configuration_fallback`. `platformTokens`: the Adobe-Subject-Token values the
 * simulator trusts (each one platform account; obviously fake ones in tests). `serviceTokenKeys`:
 * PEM RSA public keys that AD-Service-Token JWSs (RS256) must verify with.
 */
export const simSsoSchema = z
  .strictObject({
    partners: z
      .record(z.string().min(1), z.strictObject({ enabled: z.boolean().default(true), mvpds: z.array(z.string()).optional() }))
      .default({ Apple: { enabled: true } }),
    platformTokens: z.array(z.string().min(1)).default([]),
    serviceTokenKeys: z.array(z.string().min(1)).default([]),
  })
  .prefault({});

export const simRulesSchema = z.strictObject({
  serviceProviders: z
    .record(
      z.string(),
      z.strictObject({
        name: z.string(),
        domains: z.array(z.strictObject({ name: z.string(), mvpdInitiated: z.boolean().default(false) })),
      }),
    )
    .default({}),
  mvpds: z.array(mvpd).default([]),
  entitlements: z.array(entitlement).default([]),
  /** Decision for a resource that no entitlement rule matches. */
  defaultDecision: z.enum(['permit', 'deny']).default('deny'),
  /** §12.11: no profile on decisions → top-level 403, or 200 with the error on every item. */
  noProfileMode: z.enum(['top-level', 'item']).default('top-level'),
  maxResources: z
    .strictObject({ preauthorize: z.number().int().positive().default(5), authorize: z.number().int().positive().default(1) })
    .default({ preauthorize: 5, authorize: 1 }),
  sessionTtlMs: z.number().int().positive().default(30 * 60_000),
  mediaTokenTtlMs: z.number().int().positive().default(7 * 60_000),
  accessTokenTtlSeconds: z.number().int().positive().default(21_600),
  /** DCR: software statements whose software_id the "TVE Dashboard" approved. */
  approvedSoftwareIds: z.array(z.string()).default([]),
  /** §12.9: reject malformed X-Device-Info (400) instead of falling back to the User-Agent. */
  strictDeviceInfo: z.boolean().default(false),
  throttle: z
    .strictObject({
      enabled: z.boolean().default(true),
      ratePerSecond: z.number().positive().default(1),
      burst: z.number().int().nonnegative().default(10),
    })
    .default({ enabled: true, ratePerSecond: 1, burst: 10 }),
  /** The MVPD login page's password (any non-empty username is accepted). */
  loginPassword: z.string().min(1).default('pass'),
  faults: z
    .strictObject({
      latencyMs: z.number().int().nonnegative().default(0),
      /** Probability (0..1) that an upstream call answers 500 internal_server_error. */
      errorRate: z.number().min(0).max(1).default(0),
      /** Every upstream call answers 503 (HTML, as a load balancer would). */
      outage: z.boolean().default(false),
    })
    .default({ latencyMs: 0, errorRate: 0, outage: false }),
  clockOffsetMs: z.number().int().default(0),
  /** The PallyCon-style license service (POST /ri/licenseManager.do, GET /ri/fpsKeyManager.do). */
  drm: drmRules,
  /** The partner adapter (src/sim/adapter/): not an upstream of `faults`, it has its own knob. */
  adapter: z
    .strictObject({
      /** Both adapter endpoints answer 503 and record nothing, until set back to false. */
      failing: z.boolean().default(false),
    })
    .prefault({}),
  /** Encrypted user metadata (src/sim/pass/user-metadata.ts). */
  userMetadata: z
    .strictObject({
      /**
       * The programmer's certificate (PEM X.509, or a PEM RSA public key) as the TVE Dashboard holds
       * it: `enc` attributes are encrypted for it; null: for a key only the simulator holds.
       * Replacing it is what revoking the primary and switching to the backup does (user-metadata.md).
       */
      certificate: z
        .string()
        .refine(isRsaPublicPem, { message: 'expected a PEM certificate or public key with an RSA key' })
        .nullable()
        .default(null),
    })
    .prefault({}),
  sso: simSsoSchema,
});

function isRsaPublicPem(pem: string): boolean {
  try {
    return createPublicKey(pem).asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}

export type SimRules = z.infer<typeof simRulesSchema>;
export type SimMvpd = SimRules['mvpds'][number];
export type EntitlementRule = SimRules['entitlements'][number];
export type SimRulesInput = z.input<typeof simRulesSchema>;
export type SimDrmSite = z.infer<typeof drmSite>;

const logo = (name: string) => `https://sim.passgate.invalid/logos/${name}.png`;

/** The demo world of SPEC §10: REF30, Cablevision permits REF30 and denies PREMIUM. */
export function defaultRules(): SimRules {
  return simRulesSchema.parse({
    serviceProviders: {
      REF30: { name: 'Reference site only in 30', domains: [{ name: 'adobe.com' }, { name: 'passgate.invalid' }] },
    },
    mvpds: [
      { id: 'Cablevision', displayName: 'Optimum', logoUrl: logo('cablevision') },
      {
        id: 'TempPass_TEST40',
        displayName: 'Adobe Temp Pass Test 3 min',
        logoUrl: logo('temppass'),
        isTempPass: true,
        hasLogoutEndpoint: false,
      },
      { id: 'AdobePass_TEST', displayName: 'Adobe Pass Test MVPD', logoUrl: logo('adobepass-test'), isTest: true },
      // The promotional TempPass of the API samples: 1 hour, at most 2 titles per viewer.
      {
        id: 'flexibleTempPass',
        displayName: 'Adobe Promotional Temp Pass',
        logoUrl: logo('temppass'),
        isTempPass: true,
        hasLogoutEndpoint: false,
        tempPassDurationMs: 3600_000,
        tempPassMaxResources: 2,
      },
    ],
    entitlements: [
      { mvpd: 'Cablevision', resource: 'REF30', decision: 'permit' },
      {
        mvpd: 'Cablevision',
        resource: 'PREMIUM',
        decision: 'deny',
        error: 'authorization_denied_by_mvpd',
        details: 'Your subscription package does not include the "PREMIUM" channel',
      },
      { mvpd: 'TempPass_TEST40', decision: 'permit' },
      { mvpd: 'AdobePass_TEST', decision: 'permit' },
    ],
    approvedSoftwareIds: ['passgate-demo-restv2'],
  });
}
