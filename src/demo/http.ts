import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The demo's HTTP side: plain fetch, redirects followed by hand (every hop is a step the viewer
 * takes), a one-cookie-per-name jar per origin. Nothing here reaches into passgate or the simulator.
 */

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON when the answer is JSON (problem+json included). */
  json: unknown;
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let json: unknown;
  if (/json/.test(type) && text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: response.status, headers: response.headers, text, json };
}

const MAX_THROTTLE_RETRIES = 3;

/** A streaming app: X-App-Key to register, then its device token as a bearer credential. */
export class AppClient {
  private deviceToken: string | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly appKey: string,
  ) {}

  /** Kept inside the client: the demo never prints it. */
  useDeviceToken(token: string): void {
    this.deviceToken = token;
  }

  /** 429s the app waited out (Retry-After) since the last drain, for the step's lines. */
  private waited: string[] = [];

  drainThrottleNotes(): string[] {
    const notes = this.waited;
    this.waited = [];
    return notes;
  }

  /**
   * One call as a well-behaved app makes it: a 429 (the upstream's throttle per device IP, which
   * passgate mirrors) is waited out per Retry-After, a few times at most, then returned as is.
   */
  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.once(method, path, body);
      const retryAfter = Number(result.headers.get('retry-after'));
      if (result.status !== 429 || attempt >= MAX_THROTTLE_RETRIES || !Number.isFinite(retryAfter) || retryAfter < 0 || retryAfter > 10) return result;
      this.waited.push(`429 ${(result.json as { code?: string } | undefined)?.code ?? 'throttled'}; waited Retry-After ${retryAfter} s and retried`);
      await sleep(Math.max(1, retryAfter) * 1000);
    }
  }

  private async once(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.deviceToken) headers.authorization = `Bearer ${this.deviceToken}`;
    else headers['x-app-key'] = this.appKey;
    return answer(
      await fetch(new URL(path, this.baseUrl), {
        method,
        headers,
        redirect: 'manual',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      }),
    );
  }
}

/**
 * What a player does with a license token: POST the CDM's challenge to the license service with
 * the token in `pallycon-customdata-v2` (drm.md §1.5). No device token: the license service
 * trusts the token alone. `bytes` is the answer's length (a license is binary for Widevine).
 */
export async function postLicenseChallenge(url: string, token: string, challenge: { body: Buffer | string; type: string }): Promise<Answer & { bytes: number }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': challenge.type, 'pallycon-customdata-v2': token },
    body: challenge.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  });
  const raw = Buffer.from(await response.arrayBuffer());
  const type = response.headers.get('content-type') ?? '';
  const text = raw.toString('utf8');
  let json: unknown;
  if (/json/.test(type) || text.trimStart().startsWith('{')) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: response.status, headers: response.headers, text, json, bytes: raw.length };
}

/** The viewer's phone browser: cookies per origin, forms posted url-encoded, redirects by hand. */
export class Browser {
  private readonly jar = new Map<string, Map<string, string>>();

  async get(url: string): Promise<Answer> {
    return this.send(url, { method: 'GET' });
  }

  async postForm(url: string, fields: Record<string, string>): Promise<Answer> {
    return this.send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  }

  private async send(url: string, init: { method: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
    const origin = new URL(url).origin;
    const cookies = this.jar.get(origin);
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    if (cookies && cookies.size > 0) headers.cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(30_000) });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq <= 0) continue;
      const jar = this.jar.get(origin) ?? new Map<string, string>();
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      this.jar.set(origin, jar);
    }
    return answer(response);
  }

  /** Cookie names held for an origin (the demo shows that a CSRF cookie was set, not its value). */
  cookieNames(url: string): string[] {
    return [...(this.jar.get(new URL(url).origin)?.keys() ?? [])];
  }
}

/** The value of a hidden (or any) input by name in an HTML page. */
export function inputValue(html: string, name: string): string | undefined {
  const tag = new RegExp(`<input[^>]*\\bname="${name}"[^>]*>`).exec(html)?.[0];
  if (!tag) return undefined;
  const value = /\bvalue="([^"]*)"/.exec(tag)?.[1];
  return value === undefined ? undefined : decodeEntities(value);
}

export function pageTitle(html: string): string | undefined {
  const title = /<title>([^<]*)<\/title>/.exec(html)?.[1];
  return title === undefined ? undefined : decodeEntities(title.trim());
}

/** The visible text of the first <h1>. */
export function heading(html: string): string | undefined {
  const h1 = /<h1[^>]*>([\s\S]*?)<\/h1>/.exec(html)?.[1];
  return h1 === undefined ? undefined : decodeEntities(h1.replace(/<[^>]+>/g, '').trim());
}

function decodeEntities(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * The partner platform's adapter calling passgate's agent (SPEC §5): the partner secret and the
 * DSID on every call; decrypt as multipart with the file part.
 */
export class PartnerClient {
  constructor(
    private readonly baseUrl: string,
    private readonly secret: string,
  ) {}

  private async answer(response: Response): Promise<Answer> {
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  async authenticate(dsid: string, body: { fileId: string; userPrincipal: string }): Promise<Answer> {
    return this.answer(
      await fetch(`${this.baseUrl}/agent/v1/drm/authenticate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.secret}`, 'kep-agentsession': dsid, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      }),
    );
  }

  async decrypt(dsid: string, fileId: string, file: Buffer): Promise<Answer> {
    const form = new FormData();
    form.set('fileId', fileId);
    form.set('file', new Blob([file]), `${fileId}.pgdrm`);
    return this.answer(
      await fetch(`${this.baseUrl}/agent/v1/drm/decrypt`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.secret}`, 'kep-agentsession': dsid },
        body: form,
        signal: AbortSignal.timeout(30_000),
      }),
    );
  }
}
