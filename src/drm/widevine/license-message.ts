import type { LicensePolicyV2 } from '../pallycon/policy-schema.js';
import { parseTimestamp } from '../pallycon/timestamp.js';

/**
 * The Widevine cloud license message (drm.md §3.1 license template, §3.2 proxy request), built
 * from a PallyCon policy v2 (§1.4) so one policy drives both the PallyCon token and Widevine
 * direct mode. PallyCon does not document this mapping: every equivalence below is
 * [UNCONFIRMED] (drm.md §3.3 "Mapping to PallyCon"), and each non-obvious choice says why.
 */

/** Widevine track types (content_key_specs.track_type). UHD1/UHD2 are not in the Azure doc table. */
export const WIDEVINE_TRACK_TYPES = ['SD', 'HD', 'UHD1', 'UHD2', 'AUDIO'] as const;
export type WidevineTrackType = (typeof WIDEVINE_TRACK_TYPES)[number];

/** The Azure doc lists SD_ONLY and SD_HD; SD_UHD1/SD_UHD2 mirror PallyCon's tiers [UNCONFIRMED]. */
export type WidevineAllowedTrackTypes = 'SD_ONLY' | 'SD_HD' | 'SD_UHD1' | 'SD_UHD2';

/** The Azure doc lists HDCP_NONE/V1/V2; the rest are PallyCon's names passed through [UNCONFIRMED]. */
export type WidevineHdcp = 'HDCP_NONE' | 'HDCP_V1' | 'HDCP_V2' | 'HDCP_V2_1' | 'HDCP_V2_2' | 'HDCP_V2_3' | 'HDCP_NO_DIGITAL_OUTPUT';
export type WidevineCgmsFlags = 'CGMS_NONE' | 'COPY_FREE' | 'COPY_ONCE' | 'COPY_NEVER';

export interface ContentKeySpec {
  track_type: WidevineTrackType;
  /** 1..5, from software white-box crypto to everything in a hardware TEE. */
  security_level?: number;
  required_output_protection?: { hdcp?: WidevineHdcp; cgms_flags?: WidevineCgmsFlags };
}

export interface PolicyOverrides {
  can_play: boolean;
  can_persist: boolean;
  /** 0 = unlimited, in all three. */
  license_duration_seconds: number;
  rental_duration_seconds: number;
  playback_duration_seconds: number;
}

export interface SessionInit {
  provider_session_token?: string;
  provider_client_token?: string;
  override_provider_client_token?: boolean;
}

export interface WidevineLicenseMessage {
  /** base64 of the CDM's license challenge. */
  payload: string;
  /** base64 of the content id text. */
  content_id: string;
  provider: string;
  allowed_track_types?: WidevineAllowedTrackTypes;
  content_key_specs?: ContentKeySpec[];
  policy_overrides: PolicyOverrides;
  session_init: SessionInit;
  parse_only?: boolean;
}

export interface LicenseMessageInput {
  /** The license challenge exactly as the CDM produced it. */
  challenge: Uint8Array;
  /** The content id as text (the same cid the PallyCon token would carry). */
  contentId: string;
  provider: string;
  /** Defaults to `{ policy_version: 2 }`, i.e. every PallyCon default. */
  policy?: LicensePolicyV2;
  /** Epoch milliseconds; `expire_date` becomes a duration relative to it. */
  now: number;
  sessionInit?: SessionInit;
  parseOnly?: boolean;
}

/** An input no message can be built from (empty challenge, expiry in the past, …). */
export class LicenseMessageInputError extends Error {
  constructor(
    readonly field: keyof LicenseMessageInput,
    message: string,
  ) {
    super(message);
    this.name = 'LicenseMessageInputError';
  }
}

type PallyconTrackType = NonNullable<NonNullable<LicensePolicyV2['security_policy']>[number]['track_type']>;
type PallyconAllowed = NonNullable<NonNullable<LicensePolicyV2['playback_policy']>['allowed_track_types']>;
type PallyconWidevine = NonNullable<NonNullable<LicensePolicyV2['security_policy']>[number]['widevine']>;

/** drm.md §1.4: "SD_ONLY → only SD + AUDIO keys"; each higher tier adds one video track type. */
const tracksAllowedBy: Record<PallyconAllowed, readonly WidevineTrackType[]> = {
  SD_ONLY: ['SD', 'AUDIO'],
  SD_HD: ['SD', 'HD', 'AUDIO'],
  SD_UHD1: ['SD', 'HD', 'UHD1', 'AUDIO'],
  SD_UHD2: WIDEVINE_TRACK_TYPES,
  ALL: WIDEVINE_TRACK_TYPES,
};

/** The Widevine track types a PallyCon security_policy track_type covers. */
const tracksOf: Record<PallyconTrackType, readonly WidevineTrackType[]> = {
  ALL: WIDEVINE_TRACK_TYPES,
  ALL_VIDEO: ['SD', 'HD', 'UHD1', 'UHD2'],
  AUDIO: ['AUDIO'],
  SD: ['SD'],
  HD: ['HD'],
  UHD1: ['UHD1'],
  UHD2: ['UHD2'],
};

/** A narrower entry wins over a broader one for the same track (SD beats ALL_VIDEO beats ALL). */
const breadth = (trackType: PallyconTrackType): number => tracksOf[trackType].length;

/**
 * PallyCon widevine block → one content key spec. security_level 1..5 is taken as the same
 * robustness scale and the HDCP/CGMS names as the same enums [UNCONFIRMED]. Not mapped, as
 * drm.md documents no Widevine counterpart: disable_analog_output, hdcp_srm_rule and the
 * sample-only override_device_revocation, enable_license_cipher, allow_test_device.
 */
function keySpec(trackType: WidevineTrackType, widevine: PallyconWidevine | undefined): ContentKeySpec {
  const spec: ContentKeySpec = { track_type: trackType };
  if (widevine?.security_level !== undefined) spec.security_level = widevine.security_level;
  const protection: NonNullable<ContentKeySpec['required_output_protection']> = {};
  if (widevine?.required_hdcp_version !== undefined) protection.hdcp = widevine.required_hdcp_version;
  if (widevine?.required_cgms_flags !== undefined) protection.cgms_flags = widevine.required_cgms_flags;
  if (Object.keys(protection).length > 0) spec.required_output_protection = protection;
  return spec;
}

/**
 * With any Widevine security entry the message uses content_key_specs and lists every track
 * type the policy allows (drm.md §3.1: with content_key_specs "specify all track types", or
 * playback fails past 10 seconds). The allowed_track_types restriction is expressed by leaving
 * the other types out, since the two fields are mutually exclusive.
 */
function contentKeySpecs(policy: LicensePolicyV2, allowed: PallyconAllowed): ContentKeySpec[] | undefined {
  const entries = (policy.security_policy ?? []).filter((entry) => entry.widevine !== undefined);
  if (entries.length === 0) return undefined;
  const chosen = new Map<WidevineTrackType, { breadth: number; widevine: PallyconWidevine | undefined }>();
  for (const entry of entries) {
    const trackType = entry.track_type ?? 'ALL';
    for (const track of tracksOf[trackType]) {
      const current = chosen.get(track);
      // Equal breadth: the later entry wins, as a later JSON key would.
      if (!current || breadth(trackType) <= current.breadth) chosen.set(track, { breadth: breadth(trackType), widevine: entry.widevine });
    }
  }
  return tracksAllowedBy[allowed].map((track) => keySpec(track, chosen.get(track)?.widevine));
}

/**
 * drm.md §1.4: license_duration wins ("'expire_date' is ignored if 'duration' is set"); an
 * expire_date becomes the whole seconds left until it, since Widevine takes only durations.
 * 0 means unlimited on both sides, so an expiry already reached must refuse, never map to 0.
 */
function licenseDurationSeconds(policy: LicensePolicyV2, now: number): number {
  const playback = policy.playback_policy ?? {};
  if (playback.license_duration) return playback.license_duration;
  if (playback.expire_date === undefined) return 0;
  const expiresAt = parseTimestamp(playback.expire_date);
  if (expiresAt === undefined) throw new LicenseMessageInputError('policy', `expire_date ${JSON.stringify(playback.expire_date)} is not yyyy-mm-ddThh:mm:ssZ`);
  const left = Math.floor((expiresAt - now) / 1000);
  if (left < 1) throw new LicenseMessageInputError('policy', `expire_date ${playback.expire_date} has passed`);
  return left;
}

/** Builds the license message for one challenge. Throws LicenseMessageInputError. */
export function buildLicenseMessage(input: LicenseMessageInput): WidevineLicenseMessage {
  if (input.challenge.length === 0) throw new LicenseMessageInputError('challenge', 'the license challenge is empty');
  if (input.contentId === '') throw new LicenseMessageInputError('contentId', 'the content id is empty');
  if (input.provider === '') throw new LicenseMessageInputError('provider', 'the provider is empty');
  if (!Number.isFinite(input.now)) throw new LicenseMessageInputError('now', `not a time: ${input.now}`);

  const policy = input.policy ?? { policy_version: 2 };
  const playback = policy.playback_policy ?? {};
  const allowed = playback.allowed_track_types ?? 'ALL';
  const specs = contentKeySpecs(policy, allowed);

  // Keys in the order of the template table (drm.md §3.1), so a logged message reads like the doc.
  return {
    payload: Buffer.from(input.challenge).toString('base64'),
    content_id: Buffer.from(input.contentId, 'utf8').toString('base64'),
    provider: input.provider,
    // ALL sends no allowed_track_types: the field has no "all" value; the service default applies [UNCONFIRMED].
    ...(specs ? { content_key_specs: specs } : allowed !== 'ALL' ? { allowed_track_types: allowed } : {}),
    policy_overrides: {
      can_play: true,
      can_persist: playback.persistent ?? false,
      license_duration_seconds: licenseDurationSeconds(policy, input.now),
      // Explicit zeros (PallyCon's defaults) so a policy stored at the provider cannot add limits passgate did not ask for.
      rental_duration_seconds: playback.rental_duration ?? 0,
      playback_duration_seconds: playback.playback_duration ?? 0,
    },
    session_init: input.sessionInit ?? {},
    ...(input.parseOnly ? { parse_only: true } : {}),
  };
}
