import { createHash } from 'node:crypto';
import type { SimMvpd } from '../rules.js';
import { profileKey, type SimProfile, type SimState } from '../state.js';
import type { SessionParams } from './session-params.js';
import { missingParameters } from './session-params.js';

/** What a session create/resume leads to, before it is shaped into a response. */
export type SessionOutcome =
  | {
      kind: 'authorize';
      mvpd: string;
      reasonType: 'authenticated' | 'temporary' | 'degraded';
      /** The profile key the access lives under (also when a used-up TempPass has no profile left). */
      key: string;
      profile?: SimProfile;
    }
  | { kind: 'incomplete'; missing: string[] }
  | { kind: 'authenticate' };

export interface SessionOwner {
  clientId: string;
  deviceId: string;
  serviceProvider: string;
}

/** adobe-pass.md §4.6: the degraded profile's userID carries "a degradation specific prefix". */
export const DEGRADED_USER_PREFIX = '95cf93bcd183214a';

/** Only the key parts: callers may pass a whole session as the owner. */
const ownerOf = ({ clientId, deviceId, serviceProvider }: SessionOwner): SessionOwner => ({ clientId, deviceId, serviceProvider });

const deviceDigest = (owner: SessionOwner) => createHash('sha256').update(`${owner.clientId}\u0000${owner.deviceId}`).digest('hex');

export const tempPassUserId = (owner: SessionOwner) => `temppass_${deviceDigest(owner).slice(0, 16)}`;

/**
 * Decides a session whose given parameters are already valid. An MVPD alone is enough to skip
 * the browser (existing profile, TempPass, degradation); otherwise every parameter is needed.
 * Side effect: TempPass and AuthNAll create their Adobe-issued profile (§10).
 */
export function decideSession(state: SimState, owner: SessionOwner, params: SessionParams): SessionOutcome {
  const mvpd = params.mvpd === undefined ? undefined : state.mvpd(params.mvpd);
  if (mvpd) {
    const authorized = authorizeDirectly(state, owner, mvpd);
    if (authorized) return authorized;
  }
  const missing = missingParameters(params);
  return missing.length > 0 ? { kind: 'incomplete', missing } : { kind: 'authenticate' };
}

function authorizeDirectly(state: SimState, owner: SessionOwner, mvpd: SimMvpd): SessionOutcome | undefined {
  const key = profileKey(owner.clientId, owner.deviceId, owner.serviceProvider, mvpd.id);
  const existing = state.profileStatus(key);
  // A degraded profile whose rule was lifted is not valid (state.ts): the basic flow follows (§10).
  if (existing.state === 'valid') {
    const { profile } = existing;
    const reasonType = profile.type === 'regular' ? 'authenticated' : profile.type;
    return { kind: 'authorize', mvpd: mvpd.id, reasonType, key, profile };
  }
  if (mvpd.isTempPass) {
    // TempPass is granted once per device: after it ran out, the answer stays `temporary`
    // and the profile/decision calls report temporary_access_duration_limit_exceeded.
    if (state.tempPassUsed.has(key)) return { kind: 'authorize', mvpd: mvpd.id, reasonType: 'temporary', key };
    const profile = saveTemporaryProfile(state, owner, mvpd);
    state.tempPassUsed.set(key, profile.notAfter);
    return { kind: 'authorize', mvpd: mvpd.id, reasonType: 'temporary', key, profile };
  }
  if (mvpd.degradation === 'AuthNAll') {
    return { kind: 'authorize', mvpd: mvpd.id, reasonType: 'degraded', key, profile: saveDegradedProfile(state, owner, mvpd) };
  }
  return undefined;
}

function saveTemporaryProfile(state: SimState, owner: SessionOwner, mvpd: SimMvpd): SimProfile {
  const notBefore = state.now();
  const notAfter = notBefore + mvpd.tempPassDurationMs;
  const userId = tempPassUserId(owner);
  return state.saveProfile({
    ...ownerOf(owner),
    mvpd: mvpd.id,
    notBefore,
    notAfter,
    issuer: 'Adobe',
    type: 'temporary',
    attributes: {
      expiration_date: { value: notAfter, state: 'plain' },
      userID: { value: userId, state: 'plain' },
    },
    userId,
  });
}

/** The Adobe-issued profile of degraded access (profiles API sample 6: issuer Adobe, type degraded, prefixed userID). */
export function saveDegradedProfile(state: SimState, owner: SessionOwner, mvpd: SimMvpd): SimProfile {
  const notBefore = state.now();
  const userId = `${DEGRADED_USER_PREFIX}${deviceDigest(owner).slice(0, 32)}`;
  return state.saveProfile({
    ...ownerOf(owner),
    mvpd: mvpd.id,
    notBefore,
    notAfter: notBefore + mvpd.authnTtlMs,
    issuer: 'Adobe',
    type: 'degraded',
    attributes: { userID: { value: userId, state: 'plain' } },
    userId,
  });
}
