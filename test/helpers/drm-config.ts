import { DEMO_DRM_SITE, DEMO_WIDEVINE_PROVIDER } from '../../src/sim/rules.js';

/**
 * The DRM part of the test config file (as config/example.yaml, against the simulator's DEMO
 * site and demo Widevine provider): REF30 covers `ref30-*` and the exact id `ref30trailer`,
 * PREMIUM covers `premium-*`.
 */
export const demoDrmFile = {
  catalogue: {
    REF30: { content_ids: ['ref30-*', 'ref30trailer'], policy: 'streaming' },
    PREMIUM: { content_ids: ['premium-*'], policy: 'premium' },
  },
  policies: {
    streaming: { policy_version: 2, playback_policy: { persistent: false, license_duration: 3600 } },
    premium: {
      policy_version: 2,
      playback_policy: { persistent: false, license_duration: 7200, allowed_track_types: 'SD_HD' },
      security_policy: [{ track_type: 'ALL', widevine: { security_level: 3, required_hdcp_version: 'HDCP_V2' }, playready: { security_level: 2000 } }],
    },
  },
  drm: {
    mode: 'token',
    site_id: DEMO_DRM_SITE.siteId,
    site_key: DEMO_DRM_SITE.siteKey,
    access_key: DEMO_DRM_SITE.accessKey,
    widevine: { service: 'pallycon', provider: DEMO_WIDEVINE_PROVIDER.provider, signing_key: DEMO_WIDEVINE_PROVIDER.key, signing_iv: DEMO_WIDEVINE_PROVIDER.iv },
    // RevInfo is off by default: a download at start-up would show in tests that count upstream calls.
    playready: {},
  },
};

/** The simulator's RevInfo document as the drm upstream path (turns the scheduled download on). */
export const simRevInfo = { revinfo_url: '/playready/revinfo.xml' };

/** The demo drm section with some settings changed (mode, widevine service, …). */
export const drmSection = (changes: Record<string, unknown>) => ({ ...demoDrmFile.drm, ...changes });
