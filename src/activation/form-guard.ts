import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../infra/clock.js';
import type { Keyring } from '../infra/keyring.js';
import { CODE_PATTERN } from './code.js';

/** What a ticket is good for (FormGuard.ticket). */
export type TicketPurpose = 'pick' | 'continue';

/**
 * CSRF for the activation forms: a random browser secret in a SameSite=Strict, HttpOnly cookie,
 * and in each form `kid.HMAC(key, secret)` (double submit, bound to the cookie, keyed so a cookie
 * an attacker plants cannot be paired with a token he computes). The picker's ticket carries the
 * already validated code, so POST /activate/mvpd never looks codes up for an attacker. The same
 * seal marks the done page's evidence (which code this browser sent on, which logout passgate began).
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

  /**
   * A ticket: this code passed POST /activate in this browser, until it expires. Its purpose is
   * sealed in: a `pick` ticket (the picker's, the code has no MVPD yet) only opens at
   * POST /activate/mvpd, a `continue` ticket (the "one moment" page's, minted only once the code's
   * MVPD is known) only at GET /activate/continue.
   */
  ticket(purpose: TicketPurpose, code: string, secret: string): string {
    return this.seal(`ticket:${purpose}\n${secret}`, code, this.ticketTtlMs);
  }

  /** The code a valid, unexpired ticket of this purpose for this browser carries; undefined otherwise. */
  openTicket(purpose: TicketPurpose, ticket: unknown, secret: string | undefined): string | undefined {
    if (!this.isSecret(secret)) return undefined;
    const code = this.open(`ticket:${purpose}\n${secret}`, ticket);
    return code && CODE_PATTERN.test(code) ? code : undefined;
  }

  /** How long a ticket stays good (a single-use record of it need not outlive it). */
  get ticketLifetimeMs(): number {
    return this.ticketTtlMs;
  }

  /**
   * passgate's own word, for a while: `value.expiresAt.kid.mac` with the MAC over purpose, value
   * and expiry. `value` is URL-safe ([A-Za-z0-9_-]); callers encode anything else.
   */
  seal(purpose: string, value: string, ttlMs: number): string {
    if (!/^[\w-]{1,128}$/.test(value)) throw new Error('seal: the value must be 1-128 URL-safe characters');
    const { id, key } = this.keys.active;
    const expiresAt = this.clock.now() + ttlMs;
    return `${value}.${expiresAt}.${id}.${mac(key, `${purpose}\n${value}\n${expiresAt}`)}`;
  }

  /** The value of a genuine, unexpired seal for this purpose; undefined otherwise. */
  open(purpose: string, sealed: unknown): string | undefined {
    if (typeof sealed !== 'string' || sealed.length > 300) return undefined;
    const [value, expires, id, given, ...rest] = sealed.split('.');
    if (!value || !/^[\w-]{1,128}$/.test(value) || !expires || !/^\d{1,16}$/.test(expires) || !id || given === undefined || rest.length > 0) return undefined;
    const entry = this.keys.find(id);
    if (!entry || !constantEquals(given, mac(entry.key, `${purpose}\n${value}\n${expires}`))) return undefined;
    return Number(expires) > this.clock.now() ? value : undefined;
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
