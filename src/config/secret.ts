import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/** "dem…(12 chars)": a hint to tell secrets apart, never enough to use one. */
export function maskSecret(value: string): string {
  // Short secrets show no prefix at all: three characters of an 8-char key is too much.
  const prefix = value.length >= 12 ? value.slice(0, 3) : '';
  return `${prefix}…(${value.length} chars)`;
}

/**
 * A configured secret. It serialises (JSON, pino, util.inspect, template strings) to its mask,
 * so logging or printing the config can never leak it; code that needs the value calls reveal().
 */
export class Secret {
  readonly #value: string;
  readonly #masked: string;

  constructor(value: string, masked: string = maskSecret(value)) {
    this.#value = value;
    this.#masked = masked;
  }

  reveal(): string {
    return this.#value;
  }

  /** Constant-time comparison (SPEC §8); hashing first makes the lengths equal. */
  equals(candidate: string): boolean {
    const a = createHash('sha256').update(this.#value).digest();
    const b = createHash('sha256').update(candidate).digest();
    return timingSafeEqual(a, b);
  }

  toJSON(): string {
    return this.#masked;
  }

  toString(): string {
    return this.#masked;
  }

  [inspect.custom](): string {
    return `Secret(${this.#masked})`;
  }
}
