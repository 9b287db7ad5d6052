import { createHash, randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import type { SimMvpd } from '../rules.js';
import { profileKey, type SimAttribute, type SimProfile, type SimState } from '../state.js';
import { PassError } from './errors.js';

/**
 * TempPass trials (premium-workflow/temporary-access/temp-pass-feature.md). A trial belongs to the
 * device (basic: "Device Identifier new → new trial, existing → existing trial"), so every application
 * on that device shares it; a promotional trial is also found by the hash of the viewer's identity
 * (an existing identity on a new device, or a new identity on an existing device, is the existing trial).
 * The clock starts at the first authorization request; the TTL runs whether or not anything plays.
 */
export interface TempPassTrial {
  readonly id: string;
  readonly serviceProvider: string;
  readonly mvpd: string;
  readonly startedAt: number;
  readonly expiresAt: number;
  /** Promotional only: the resource ids authorized so far (the profile's `used_assets`). */
  readonly usedAssets: string[];
  /** The keys it is found by: its device, and its identity hash when promotional. */
  readonly keys: Set<string>;
}

export type TrialState = 'active' | 'duration_exceeded' | 'resources_exceeded';

const deviceKey = (serviceProvider: string, mvpd: string, deviceId: string) => ['device', serviceProvider, mvpd, deviceId].join('\u0000');
const identityKey = (serviceProvider: string, mvpd: string, identity: string) => ['identity', serviceProvider, mvpd, identity].join('\u0000');

/** A promotional TempPass MVPD limits the number of resources; a basic one only the time. */
export const isPromotional = (mvpd: SimMvpd): boolean => mvpd.tempPassMaxResources !== undefined;

/** RFC 4648 base64 with its padding, at least one byte. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/;

/**
 * AP-TempPass-Identity (rest-api-v2-appendix-headers-ap-temppass-identity.md): "the Base64-encoded
 * value over the user identity information". The page's example encodes a JSON object
 * ({"email": "…"}) but defines no format for the information itself, so any base64 value is an
 * identity; its hash (never the value) identifies the viewer. Undefined when absent, 'invalid'
 * when it is not base64 (the 400 of the profiles and decisions samples' "Invalid Identity").
 */
export function readTempPassIdentity(raw: string | undefined): string | 'invalid' | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = raw.trim();
  if (!BASE64.test(value)) return 'invalid';
  return createHash('sha256').update(Buffer.from(value, 'base64')).digest('hex');
}

export interface TrialOwner {
  serviceProvider: string;
  deviceId: string;
  /** The identity hash (promotional TempPass). */
  identity?: string;
}

export class TempPassTrials {
  private readonly byKey = new Map<string, TempPassTrial>();

  private keysOf(mvpd: SimMvpd, owner: TrialOwner): string[] {
    const keys = [deviceKey(owner.serviceProvider, mvpd.id, owner.deviceId)];
    if (isPromotional(mvpd) && owner.identity !== undefined) keys.unshift(identityKey(owner.serviceProvider, mvpd.id, owner.identity));
    return keys;
  }

  /** The owner's trial (by identity first, then by device), or undefined when it never started. */
  find(mvpd: SimMvpd, owner: TrialOwner): TempPassTrial | undefined {
    for (const key of this.keysOf(mvpd, owner)) {
      const trial = this.byKey.get(key);
      if (trial) {
        // Found by one key: the other (a new device or identity) now leads to the same trial.
        for (const other of this.keysOf(mvpd, owner)) this.link(other, trial);
        return trial;
      }
    }
    return undefined;
  }

  /** The owner's trial, started now when there is none. */
  findOrStart(mvpd: SimMvpd, owner: TrialOwner, now: number): TempPassTrial {
    const found = this.find(mvpd, owner);
    if (found) return found;
    const trial: TempPassTrial = {
      id: randomUUID(),
      serviceProvider: owner.serviceProvider,
      mvpd: mvpd.id,
      startedAt: now,
      expiresAt: now + mvpd.tempPassDurationMs,
      usedAssets: [],
      keys: new Set(),
    };
    for (const key of this.keysOf(mvpd, owner)) this.link(key, trial);
    return trial;
  }

  private link(key: string, trial: TempPassTrial): void {
    if (this.byKey.has(key)) return;
    this.byKey.set(key, trial);
    trial.keys.add(key);
  }

  /**
   * The Reset TempPass API's effect (temp-pass-feature.md, DELETE /reset-tempass/v3/reset and /reset/generic):
   * forget the trials of one MVPD (or all), of one device or identity (or all). Returns how many were forgotten.
   */
  reset(filter: { mvpd?: string; deviceId?: string; identity?: string }): TempPassTrial[] {
    const gone = new Set<TempPassTrial>();
    for (const [key, trial] of this.byKey) {
      if (filter.mvpd !== undefined && trial.mvpd !== filter.mvpd) continue;
      const [kind, , , value] = key.split('\u0000');
      if (filter.deviceId !== undefined && !(kind === 'device' && value === filter.deviceId)) continue;
      if (filter.identity !== undefined && !(kind === 'identity' && value === filter.identity)) continue;
      gone.add(trial);
    }
    for (const trial of gone) for (const key of trial.keys) this.byKey.delete(key);
    return [...gone];
  }

  clear(): void {
    this.byKey.clear();
  }
}

export function trialState(trial: TempPassTrial, mvpd: SimMvpd, now: number): TrialState {
  if (now >= trial.expiresAt) return 'duration_exceeded';
  const max = mvpd.tempPassMaxResources;
  if (max !== undefined && trial.usedAssets.length >= max) return 'resources_exceeded';
  return 'active';
}

/** The enhanced error code of a trial that grants no more, or undefined while it does. */
export function trialErrorCode(state: TrialState) {
  switch (state) {
    case 'duration_exceeded':
      return 'temporary_access_duration_limit_exceeded' as const;
    case 'resources_exceeded':
      return 'temporary_access_resources_limit_exceeded' as const;
    case 'active':
      return undefined;
  }
}

/**
 * Whether `resourceId` may be authorized on the trial (and, for an authorize, records it as used).
 * A title already played stays playable; a new one needs a resource left (temp-pass-feature.md
 * "Number of Resources: how many VOD titles a user can access").
 */
export function admitResource(trial: TempPassTrial, mvpd: SimMvpd, resourceId: string, consume: boolean, now: number) {
  if (now >= trial.expiresAt) return 'temporary_access_duration_limit_exceeded' as const;
  const max = mvpd.tempPassMaxResources;
  if (max === undefined || trial.usedAssets.includes(resourceId)) return undefined;
  if (trial.usedAssets.length >= max) return 'temporary_access_resources_limit_exceeded' as const;
  if (consume) trial.usedAssets.push(resourceId);
  return undefined;
}

/** The profile's userID: stable per trial, so every app on the device sees the same temporary user. */
export const tempPassUserId = (trial: TempPassTrial) => `temppass_${createHash('sha256').update(trial.id).digest('hex').slice(0, 16)}`;

/**
 * The temporary profile an application sees for a trial (profiles API samples 4 and 5): issuer Adobe,
 * type temporary, expiration_date and userID; promotional adds remaining_resources and used_assets.
 * Saved under the application's key too, so GET profiles lists it while the trial runs.
 */
export function saveTemporaryProfile(state: SimState, clientId: string, deviceId: string, mvpd: SimMvpd, trial: TempPassTrial): SimProfile {
  const userId = tempPassUserId(trial);
  const max = mvpd.tempPassMaxResources;
  const promotional: Record<string, SimAttribute> =
    max === undefined
      ? {}
      : {
          remaining_resources: { value: Math.max(0, max - trial.usedAssets.length), state: 'plain' as const },
          used_assets: { value: [...trial.usedAssets], state: 'plain' as const },
        };
  return state.saveProfile({
    clientId,
    deviceId,
    serviceProvider: trial.serviceProvider,
    mvpd: mvpd.id,
    notBefore: trial.startedAt,
    notAfter: trial.expiresAt,
    issuer: 'Adobe',
    type: 'temporary',
    attributes: {
      ...promotional,
      expiration_date: { value: trial.expiresAt, state: 'plain' },
      userID: { value: userId, state: 'plain' },
    },
    userId,
  });
}

/** The application's temporary profile while the trial grants access; removed once it no longer does. */
export function syncTemporaryProfile(state: SimState, clientId: string, deviceId: string, mvpd: SimMvpd, trial: TempPassTrial): SimProfile | undefined {
  if (trialState(trial, mvpd, state.now()) === 'active') return saveTemporaryProfile(state, clientId, deviceId, mvpd, trial);
  state.deleteProfile(profileKey(clientId, deviceId, trial.serviceProvider, mvpd.id));
  return undefined;
}

/** The request's AP-TempPass-Identity hash; a malformed header is the documented 400 wherever it is sent. */
export function requestIdentity(ctx: Context): string | undefined {
  const identity = readTempPassIdentity(ctx.get('ap-temppass-identity') || undefined);
  if (identity === 'invalid') throw new PassError('invalid_header_identity_for_temporary_access');
  return identity;
}

/** The identity a promotional TempPass call needs: a missing or malformed header is the documented 400 code. */
export function requireIdentity(mvpd: SimMvpd, ctx: Context): string | undefined {
  const identity = requestIdentity(ctx);
  if (isPromotional(mvpd) && identity === undefined) throw new PassError('invalid_header_identity_for_temporary_access');
  return identity;
}
