import type { ExecutionContext } from 'ava';
import type { SessionParams } from '../../src/pass/index.js';
import { newDeviceId, sampleDeviceInfo, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';

/** Small limits so brute force is cheap to show; the upstream throttles are out of the way. */
export const limits = { attempts_per_ip: { burst: 5, per_minute: 1 }, attempts_global: { burst: 30, per_minute: 1 } };

export async function withActivation(t: ExecutionContext, activation: Record<string, unknown> = limits): Promise<PassgateFixture> {
  return withPassgate(t, {
    // The tests stand in for many viewers: X-Forwarded-For from the loopback "proxy" is believed.
    env: { PASSGATE_TRUSTED_PROXIES: 'loopback' },
    file: {
      signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true },
      activation,
      // A large one-time burst; a slow rate keeps the mirror's stale-token window (one period) wide under load.
      throttle: { rate_per_second: 1, burst: 1_000 },
    },
    simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } },
  });
}

let ipCounter = 0;
/** A fresh viewer address per call (10.x.y.z). */
export const freshIp = () => {
  const n = ++ipCounter + Math.floor(Math.random() * 1_000) * 1_000;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

/** A TV device of the demo app with an authentication session upstream (created by passgate's Pass client). */
export async function tvSession(f: PassgateFixture, params: SessionParams = {}): Promise<{ code: string; tv: Awaited<ReturnType<typeof tvDevice>> }> {
  const tv = await tvDevice(f);
  const session = await f.passgate.services.pass.pass.createSession(tv, params);
  if (!session.code) throw new Error(`no code in ${JSON.stringify(session)}`);
  return { code: session.code, tv };
}

async function tvDevice(f: PassgateFixture) {
  const client = { ip: '192.0.2.10' };
  const device = await f.passgate.services.pass.registry.register({ appId: 'demo', deviceId: newDeviceId(), deviceInfo: sampleDeviceInfo, client });
  return { device, client };
}

export interface Browser {
  ip: string;
  cookie: string;
  csrf: string;
}

/** GET /activate as a viewer: the cookie and the form's CSRF token. */
export async function openForm(f: PassgateFixture, ip = freshIp(), query = ''): Promise<Browser & { response: Response; html: string }> {
  const response = await f.call(`/activate${query}`, { headers: { 'x-forwarded-for': ip } });
  const html = await response.text();
  const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  return { ip, cookie, csrf: hiddenField(html, 'csrf'), response, html };
}

export function hiddenField(html: string, name: string): string {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';
}

/** POST a form as that browser (its IP, cookie); fields override the CSRF token. */
export function post(f: PassgateFixture, browser: Browser, path: string, fields: Record<string, string>): Promise<Response> {
  return f.call(path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': browser.ip, cookie: browser.cookie },
    body: new URLSearchParams({ csrf: browser.csrf, ...fields }).toString(),
  });
}

/** The text of the page's alert, if any. */
export const alertOf = (html: string) => /role="alert"[^>]*>([^<]*)</.exec(html)?.[1];

export const authenticateUrl = (f: PassgateFixture, code: string) => `${f.sim.url}/api/v2/authenticate/REF30/${code}`;

/** The activation counter's value for one result, from the metrics endpoint. */
export async function attempts(f: PassgateFixture, result: string): Promise<number> {
  const text = await (await fetch(f.passgate.metricsUrl)).text();
  const match = new RegExp(`^passgate_activation_attempts_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : NaN;
}

/** A TV app's device (the given app) asking passgate for a sign-in code: POST /v1/devices, POST /v1/authentication. */
export async function appCode(f: PassgateFixture, app: 'demo' | 'roku' = 'demo', mvpd?: string): Promise<{ code: string; token: string }> {
  const registered = await f.register({}, { 'x-app-key': f.apps[app].key });
  const { deviceToken: token } = (await registered.json()) as { deviceToken: string };
  const started = await f.call('/v1/authentication', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(mvpd ? { mvpd } : {}),
  });
  const { code } = (await started.json()) as { code?: string };
  if (started.status !== 201 || !code) throw new Error(`POST /v1/authentication answered ${started.status}`);
  return { code, token };
}

/** The browser at the simulator's authenticate URL and MVPD login form (adobe-pass.md §4.5): where it is sent back to. */
export async function mvpdLogin(authenticate: string, username = 'alice'): Promise<string> {
  const start = await fetch(authenticate, { redirect: 'manual' });
  const loginUrl = start.headers.get('location') ?? '';
  const session = /name="session" value="([^"]+)"/.exec(await (await fetch(loginUrl)).text())?.[1] ?? '';
  const action = new URL(loginUrl);
  action.search = '';
  const done = await fetch(action, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ session, username, password: 'pass' }).toString() });
  if (done.status !== 302) throw new Error(`MVPD login answered ${done.status}`);
  return done.headers.get('location') ?? '';
}

/** The done page's cookie from a 303 (name=value), '' when none was set. */
export const doneCookieOf = (response: Response) =>
  response.headers.getSetCookie().find((c) => c.startsWith('passgate-activation-done='))?.split(';')[0] ?? '';

/** The done page's heading and text, whitespace folded. */
export async function donePage(f: PassgateFixture, path: string, cookie = ''): Promise<{ status: number; h1: string; text: string }> {
  const response = await f.call(path, { headers: cookie ? { cookie } : {} });
  const html = await response.text();
  const text = (/<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
  return { status: response.status, h1: decodeEntities(/<h1>([^<]*)<\/h1>/.exec(html)?.[1] ?? ''), text: decodeEntities(text) };
}

const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const decodeEntities = (html: string) => html.replace(/&(amp|lt|gt|quot|#39);/g, (e) => entities[e] ?? e);
