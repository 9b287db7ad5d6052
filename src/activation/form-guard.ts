import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../infra/clock.js';
import type { Keyring } from '../infra/keyring.js';
import { CODE_PATTERN } from './code.js';

/**
 * CSRF for the activation forms: a random browser secret in a SameSite=Strict, HttpOnly cookie,
 * and in each form `kid.HMAC(key, secret)` (double submit, bound to the cookie, keyed so a cookie
 * an attacker plants cannot be paired with a token he computes). The picker's ticket carries the
 * already validated code, so POST /activate/mvpd never looks codes up for an attacker.
 * Every comparison is constant time.
 */
export class FormGuard {
  constructor(
    /** keyring.derive('csrf'): the first entry signs, every entry verifies (rotation). */
    private readonly keys: Keyring,
    private readonly clock: Clock,
    private readonly ticketTtlMs = 10 * 60_000,
  ) {}

  /** A fresh browser secret for the cookie. */
  newSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /** Whether a cookie value looks like one of ours (else a fresh one is issued). */
  isSecret(value: string | undefined): value is string {
    return typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value);
  }

  /** The form token for this browser secret. */
  token(secret: string): string {
    const { id, key } = this.keys.active;
    return `${id}.${mac(key, `csrf\n${secret}`)}`;
  }

  verify(secret: string | undefined, token: unknown): boolean {
    if (!this.isSecret(secret) || typeof token !== 'string') return false;
    const [id, given, ...rest] = token.split('.');
    const entry = id ? this.keys.find(id) : undefined;
    if (!entry || given === undefined || rest.length > 0) return false;
    return constantEquals(given, mac(entry.key, `csrf\n${secret}`));
  }

  /** A picker ticket: this code passed POST /activate in this browser, until it expires. */
  ticket(code: string, secret: string): string {
    const { id, key } = this.keys.active;
    const expiresAt = this.clock.now() + this.ticketTtlMs;
    return `${code}.${expiresAt}.${id}.${mac(key, `ticket\n${code}\n${expiresAt}\n${secret}`)}`;
  }

  /** The code a valid, unexpired ticket for this browser carries; undefined otherwise. */
  openTicket(ticket: unknown, secret: string | undefined): string | undefined {
    if (typeof ticket !== 'string' || !this.isSecret(secret) || ticket.length > 200) return undefined;
    const [code, expires, id, given, ...rest] = ticket.split('.');
    if (!code || !CODE_PATTERN.test(code) || !expires || !/^\d{1,16}$/.test(expires) || !id || given === undefined || rest.length > 0) return undefined;
    const entry = this.keys.find(id);
    if (!entry || !constantEquals(given, mac(entry.key, `ticket\n${code}\n${expires}\n${secret}`))) return undefined;
    return Number(expires) > this.clock.now() ? code : undefined;
  }
}

function mac(key: Buffer, message: string): string {
  return createHmac('sha256', key).update(message, 'utf8').digest('base64url');
}

/** crypto.timingSafeEqual over equal-length digests (oidc-provider `constant_equals.js`). */
export function constantEquals(a: string, b: string): boolean {
  const left = createHmac('sha256', 'compare').update(a).digest();
  const right = createHmac('sha256', 'compare').update(b).digest();
  return timingSafeEqual(left, right) && a.length === b.length;
}
