import { createHash } from 'node:crypto';
import type { SimMvpd } from '../rules.js';
import { profileKey, type SimProfile, type SimState } from '../state.js';
import type { SessionParams } from './session-params.js';
import { missingParameters } from './session-params.js';
import { isPromotional, syncTemporaryProfile } from './temppass.js';

/** What a session create/resume leads to, before it is shaped into a response. */
export type SessionOutcome =
  | {
      kind: 'authorize';
      mvpd: string;
      reasonType: 'authenticated' | 'temporary' | 'degraded' | 'authenticatedSSO';
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

/**
 * Decides a session whose given parameters are already valid. An MVPD alone is enough to skip
 * the browser (existing profile, TempPass, degradation); otherwise every parameter is needed.
 * Side effect: TempPass (starting the device's trial) and AuthNAll create their Adobe-issued profile (§10).
 */
export function decideSession(state: SimState, owner: SessionOwner, params: SessionParams, identity?: string): SessionOutcome {
  const mvpd = params.mvpd === undefined ? undefined : state.mvpd(params.mvpd);
  if (mvpd) {
    const authorized = authorizeDirectly(state, owner, mvpd, identity);
    if (authorized) return authorized;
  }
  const missing = missingParameters(params);
  return missing.length > 0 ? { kind: 'incomplete', missing } : { kind: 'authenticate' };
}

function authorizeDirectly(state: SimState, owner: SessionOwner, mvpd: SimMvpd, identity: string | undefined): SessionOutcome | undefined {
  const key = profileKey(owner.clientId, owner.deviceId, owner.serviceProvider, mvpd.id);
  if (mvpd.isTempPass) {
    // temp-pass-feature.md: the trial is the device's (and the identity's, promotional). Another app on
    // the same device joins the running trial; a used-up one stays `temporary` without a profile, and
    // the profile/decision calls report why. A promotional trial never starts without an identity.
    const trialOwner = { serviceProvider: owner.serviceProvider, deviceId: owner.deviceId, ...(identity !== undefined ? { identity } : {}) };
    const trial = isPromotional(mvpd) && identity === undefined ? state.tempPass.find(mvpd, trialOwner) : state.tempPass.findOrStart(mvpd, trialOwner, state.now());
    const profile = trial && syncTemporaryProfile(state, owner.clientId, owner.deviceId, mvpd, trial);
    return { kind: 'authorize', mvpd: mvpd.id, reasonType: 'temporary', key, ...(profile ? { profile } : {}) };
  }
  const existing = state.profileStatus(key);
  // A degraded profile whose rule was lifted is not valid (state.ts): the basic flow follows (§10).
  if (existing.state === 'valid') {
    const { profile } = existing;
    // Sessions API reasonType: an SSO profile is `authenticatedSSO`.
    const reasonType = profile.type === 'regular' ? 'authenticated' : profile.type === 'degraded' || profile.type === 'temporary' ? profile.type : 'authenticatedSSO';
    return { kind: 'authorize', mvpd: mvpd.id, reasonType, key, profile };
  }
  if (mvpd.degradation === 'AuthNAll') {
    return { kind: 'authorize', mvpd: mvpd.id, reasonType: 'degraded', key, profile: saveDegradedProfile(state, owner, mvpd) };
  }
  return undefined;
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
