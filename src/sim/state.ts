import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../infra/clock.js';
import { AdapterInbox } from './adapter/inbox.js';
import { TempPassTrials, tempPassUserId } from './pass/temppass.js';
import type { SimRules } from './rules.js';

/**
 * The simulator's memory of the world: DCR clients and tokens, authentication sessions,
 * profiles and the request log. In-memory on purpose: it stands in for a remote service.
 */

export interface SimClient {
  clientId: string;
  clientSecret: string;
  softwareId: string;
  issuedAtSeconds: number;
  redirectUris: string[];
}

export interface SimToken {
  accessToken: string;
  clientId: string;
  createdAt: number;
  expiresAt: number;
}

export interface SimSession {
  code: string;
  sessionId: string;
  serviceProvider: string;
  clientId: string;
  /** The AP-Device-Identifier value the session was created with (profile key part). */
  deviceId: string;
  /** Decoded X-Device-Info (or what was derived from the User-Agent). */
  device: SimDevice;
  params: { mvpd?: string; domainName?: string; redirectUrl?: string };
  notBefore: number;
  notAfter: number;
  /** A newer code for the same client and device invalidates this one (adobe-pass.md §9). */
  superseded: boolean;
  /** Set when the MVPD login through this session created a profile. */
  profileKey?: string;
}

/** adobe-pass.md §4.6; the SSO types come from the partner, platform identity and service token flows. */
export type ProfileType = 'regular' | 'degraded' | 'temporary' | 'appleSSO' | 'platformSSO' | 'serviceTokenSSO';

export interface SimAttribute {
  value: unknown;
  state: 'plain' | 'enc';
}

export interface SimProfile {
  key: string;
  clientId: string;
  deviceId: string;
  serviceProvider: string;
  mvpd: string;
  notBefore: number;
  notAfter: number;
  issuer: string;
  type: ProfileType;
  attributes: Record<string, SimAttribute>;
  userId: string;
}

export interface SimDevice {
  raw: Record<string, unknown>;
  userAgent?: string;
  connectionIp?: string;
  /** The TCP port the request came from (the session sample's `connection.port`, a string). */
  connectionPort?: string;
}

export interface SimLogEntry {
  time: string;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  operation: string;
  headers: Record<string, string>;
  status: number;
}

export const profileKey = (clientId: string, deviceId: string, serviceProvider: string, mvpd: string) =>
  [clientId, deviceId, serviceProvider, mvpd].join('\u0000');

/** adobe-pass.md §6: codes in the samples are 6–7 upper-case alphanumerics. */
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export const CODE_PATTERN = /^[A-Z0-9]{4,16}$/;

export class SimState {
  readonly clients = new Map<string, SimClient>();
  readonly tokens = new Map<string, SimToken>();
  readonly sessions = new Map<string, SimSession>();
  readonly profiles = new Map<string, SimProfile>();
  /** TempPass trials, by device (and identity hash when promotional): shared by every app on the device. */
  readonly tempPass = new TempPassTrials();
  /** Remaining uses of entitlement rules with `times`. */
  readonly ruleUses = new Map<number, number>();
  /** What the partner adapter received (GET /sim/adapter/received). */
  readonly adapter = new AdapterInbox();
  log: SimLogEntry[] = [];

  constructor(
    readonly clock: Clock,
    public rules: SimRules,
  ) {}

  now(): number {
    return this.clock.now();
  }

  registerClient(softwareId: string, redirectUris: string[]): SimClient {
    const client: SimClient = {
      clientId: randomUUID(),
      clientSecret: randomBytes(24).toString('base64url'),
      softwareId,
      issuedAtSeconds: Math.floor(this.now() / 1000),
      redirectUris,
    };
    this.clients.set(client.clientId, client);
    return client;
  }

  issueToken(clientId: string): SimToken {
    const createdAt = this.now();
    const token: SimToken = {
      accessToken: randomBytes(32).toString('base64url'),
      clientId,
      createdAt,
      expiresAt: createdAt + this.rules.accessTokenTtlSeconds * 1000,
    };
    this.tokens.set(token.accessToken, token);
    return token;
  }

  /** The client behind a bearer token, or undefined when it is unknown, expired or its statement revoked. */
  clientForToken(accessToken: string): SimClient | undefined {
    const token = this.tokens.get(accessToken);
    if (!token) return undefined;
    if (this.now() >= token.expiresAt) {
      this.tokens.delete(accessToken);
      return undefined;
    }
    const client = this.clients.get(token.clientId);
    return client && this.isApproved(client) ? client : undefined;
  }

  /**
   * The client's software statement is still approved. Taking it out of approvedSoftwareIds is its
   * revocation: dynamic-client-registration-faqs.md (Registration FAQ 5) says the applications using
   * a revoked statement "will no longer be able to go through the entitlement flows", so its clients'
   * tokens stop working and no new token is issued to them.
   */
  isApproved(client: SimClient): boolean {
    return this.rules.approvedSoftwareIds.includes(client.softwareId);
  }

  /** Fault knob: every access token issued so far answers 401 from now on. */
  expireAllTokens(): number {
    const count = this.tokens.size;
    this.tokens.clear();
    return count;
  }

  createSession(input: Omit<SimSession, 'code' | 'sessionId' | 'notBefore' | 'notAfter' | 'superseded'>): SimSession {
    for (const other of this.sessions.values()) {
      if (other.clientId === input.clientId && other.deviceId === input.deviceId) other.superseded = true;
    }
    let code: string;
    do code = randomCode(7);
    while (this.sessions.has(code));
    const notBefore = this.now();
    const session: SimSession = {
      ...input,
      code,
      sessionId: randomUUID(),
      notBefore,
      notAfter: notBefore + this.rules.sessionTtlMs,
      superseded: false,
    };
    this.sessions.set(code, session);
    return session;
  }

  /** A session that can still be used: known, not expired, not replaced by a newer code. */
  liveSession(code: string, serviceProvider: string): SimSession | undefined {
    const session = this.sessions.get(code);
    if (!session || session.serviceProvider !== serviceProvider || session.superseded) return undefined;
    if (this.now() >= session.notAfter) return undefined;
    return session;
  }

  saveProfile(profile: Omit<SimProfile, 'key'>): SimProfile {
    const key = profileKey(profile.clientId, profile.deviceId, profile.serviceProvider, profile.mvpd);
    const saved = { ...profile, key };
    this.profiles.set(key, saved);
    return saved;
  }

  /** The profile for the key if it is valid now; expired ones are reported as such, then removed. */
  profileStatus(key: string): { profile: SimProfile; state: 'valid' } | { state: 'expired' | 'missing' } {
    const profile = this.profiles.get(key);
    if (!profile) return { state: 'missing' };
    if (this.liftedDegradation(profile)) return { state: 'missing' };
    if (this.now() >= profile.notAfter) return { state: 'expired' };
    return { profile, state: 'valid' };
  }

  /**
   * A degraded profile lives only while its MVPD's AuthNAll rule does: once lifted, "the response will
   * default to the basic flow" (rest-api-v2-access-degraded-flows.md), so it is gone (and removed).
   */
  private liftedDegradation(profile: SimProfile): boolean {
    if (profile.type !== 'degraded' || this.mvpd(profile.mvpd)?.degradation === 'AuthNAll') return false;
    this.profiles.delete(profile.key);
    return true;
  }

  /** Valid profiles of one (client, device, service provider); expired ones are purged. */
  validProfiles(clientId: string, deviceId: string, serviceProvider: string): SimProfile[] {
    const found: SimProfile[] = [];
    for (const [key, profile] of this.profiles) {
      if (profile.clientId !== clientId || profile.deviceId !== deviceId || profile.serviceProvider !== serviceProvider) continue;
      if (this.liftedDegradation(profile)) continue;
      if (this.now() >= profile.notAfter) {
        this.profiles.delete(key);
        continue;
      }
      found.push(profile);
    }
    return found;
  }

  /** The Reset TempPass API: the trials go, and so do the temporary profiles they gave the applications. */
  resetTempPass(filter: { mvpd?: string; deviceId?: string; identity?: string }): number {
    const trials = this.tempPass.reset(filter);
    const users = new Set(trials.map(tempPassUserId));
    for (const [key, profile] of this.profiles) if (profile.type === 'temporary' && users.has(profile.userId)) this.profiles.delete(key);
    return trials.length;
  }

  deleteProfile(key: string): boolean {
    return this.profiles.delete(key);
  }

  mvpd(id: string) {
    return this.rules.mvpds.find((m) => m.id === id);
  }

  record(entry: SimLogEntry): void {
    this.log.push(entry);
    // Bounded, so a long-running local simulator does not grow without limit.
    if (this.log.length > 10_000) this.log.splice(0, this.log.length - 10_000);
  }

  reset(rules: SimRules): void {
    this.rules = rules;
    this.clients.clear();
    this.tokens.clear();
    this.sessions.clear();
    this.profiles.clear();
    this.tempPass.clear();
    this.ruleUses.clear();
    this.adapter.clear();
    this.log = [];
  }
}

function randomCode(length: number): string {
  const bytes = randomBytes(length);
  let code = '';
  for (const byte of bytes) code += CODE_ALPHABET[byte % CODE_ALPHABET.length];
  return code;
}

/** A short stable digest, used where the log must identify a token without revealing it. */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12);
}
