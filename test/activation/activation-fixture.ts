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
