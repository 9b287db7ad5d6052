import type { ClientAddress } from '../http/client-address.js';
import type { Store } from '../infra/store.js';

/** A profile as passgate keeps and serves it (adobe-pass.md §4.6: mvpd, attributes, notAfter are what to cache). */
export interface CurrentProfile {
  mvpd: string;
  notBefore: number;
  notAfter: number;
  type?: string;
  issuer?: string;
  attributes: Record<string, unknown>;
}

/** An MVPD as the picker shows it (and as passgate persists the viewer's choice, checklist "configuration"). */
export interface PickerMvpd {
  id: string;
  displayName: string;
  logoUrl?: string;
}

/**
 * The one rule of what the picker offers (GET /v1/mvpds, the second screen's picker) and so what an
 * app or a viewer may name: not in `signin.hidden_mvpds`, and not TempPass while `signin.hide_temppass`.
 */
export function offeredBy(settings: { hiddenMvpds: readonly string[]; hideTempPass: boolean }): (mvpd: { id: string; isTempPass?: boolean | undefined }) => boolean {
  const hidden = new Set(settings.hiddenMvpds);
  return (mvpd) => !hidden.has(mvpd.id) && !(settings.hideTempPass && mvpd.isTempPass === true);
}

export interface CachedConfiguration {
  mvpds: (PickerMvpd & { isTempPass: boolean })[];
  /** Clock ms after which the upstream is asked again. */
  expiresAt: number;
}

/** A code passgate issued and may poll for (adobe-pass.md §9: valid until notAfter). */
export interface PendingSession {
  code: string;
  appId: string;
  /** The device binding that asked (devices/service.ts). */
  binding: string;
  notAfter: number;
  createdAt: number;
  mvpd?: string;
  /** Where the device was when it asked for the code: the polls carry it upstream (X-Forwarded-For). */
  client: ClientAddress;
}

export type SigninStatus = { status: 'pending' } | { status: 'expired' } | { status: 'authenticated'; profile: CurrentProfile };

export interface CachedProfiles {
  profiles: CurrentProfile[];
  /** Clock ms: the longest notAfter, or a short negative-cache horizon when there are none. */
  validUntil: number;
}

/**
 * The signin feature's store namespaces (keys: code, platform, or `<app>:<binding>`):
 * - signin.configuration  platform → CachedConfiguration
 * - signin.sessions       code → PendingSession
 * - signin.current        device → its newest code (a newer one supersedes it)
 * - signin.results        code → {status:'authenticated', profile} once a poll found it
 * - signin.waiting        code → clock ms an app was last seen waiting on it (any replica)
 * - signin.profiles       device → CachedProfiles
 * - signin.mvpd           device → PickerMvpd (the viewer's chosen MVPD)
 */
export function signinRecords(store: Store) {
  return {
    configuration: store.namespace<CachedConfiguration>('signin.configuration'),
    sessions: store.namespace<PendingSession>('signin.sessions'),
    current: store.namespace<string>('signin.current'),
    results: store.namespace<SigninStatus>('signin.results'),
    waiting: store.namespace<number>('signin.waiting'),
    profiles: store.namespace<CachedProfiles>('signin.profiles'),
    chosenMvpd: store.namespace<PickerMvpd>('signin.mvpd'),
  };
}
export type SigninRecords = ReturnType<typeof signinRecords>;

export const deviceKey = (appId: string, binding: string) => `${appId}:${binding}`;

/** Sessions stored before device bindings name the device `fingerprint`: the id of its first binding. */
export function withBinding(session: (PendingSession & { fingerprint?: string }) | undefined): PendingSession | undefined {
  if (!session || typeof session.binding === 'string') return session;
  const { fingerprint, ...rest } = session;
  return typeof fingerprint === 'string' ? { ...rest, binding: fingerprint } : undefined;
}
