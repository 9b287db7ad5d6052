/**
 * What an app, a viewer and a well-behaved upstream client do, over HTTP only (passgate and the
 * simulator run in other processes): register a device, sign in through the simulator's MVPD
 * login page, authorize once so the Permit is cached; and, for the pass-through row, a DCR
 * client of the simulator's own that calls decisions/authorize directly.
 */

import { loadConfig } from '../src/config/load.js';
import { DEMO_DEVICE_INFO, demoFixtures } from '../src/demo/script.js';

export const APP_KEY = demoFixtures.appKey;
export const SERVICE_PROVIDER = 'REF30';
export const MVPD = demoFixtures.mvpd;
export const RESOURCE = demoFixtures.permitted;
export const DRM = { system: 'widevine', contentId: 'ref30-movie' } as const;

/** What the bench's devices register: the demo app's tvOS device info. */
export const DEVICE_INFO = DEMO_DEVICE_INFO;

/** config/example.yaml's demo software statement (obviously fake; only the simulator takes it). */
function softwareStatement(): string {
  const app = Object.values(loadConfig({}).apps)[0];
  if (!app) throw new Error('bench: config/example.yaml has no app');
  return app.softwareStatement.reveal();
}

async function expectStatus(response: Response, status: number | number[], what: string): Promise<Response> {
  const wanted = Array.isArray(status) ? status : [status];
  if (!wanted.includes(response.status)) throw new Error(`bench: ${what} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  return response;
}

/** Answers that passgate asked to retry (429 / 503 with Retry-After) during setup, by status. */
export const retried: Record<number, number> = {};

/**
 * fetch against passgate during setup, retried as an app would on 429 and 503 (after Retry-After,
 * at most 2 s, 5 times): under the seeding load passgate may pace upstream calls or shed load.
 */
async function callPassgate(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(url, init);
    if ((response.status !== 429 && response.status !== 503) || attempt === 6) return response;
    retried[response.status] = (retried[response.status] ?? 0) + 1;
    await response.arrayBuffer();
    const seconds = Number(response.headers.get('retry-after') ?? 1);
    await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, Math.max(100, seconds * 1000))));
  }
}

export interface Device {
  deviceId: string;
  deviceToken: string;
  deviceSecret: string;
  fingerprint: string;
}

/** POST /v1/devices as the demo app: a first registration (201, with the device secret). */
export async function registerDevice(passgateUrl: string, deviceId: string): Promise<Device> {
  const response = await callPassgate(`${passgateUrl}/v1/devices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-app-key': APP_KEY },
    body: JSON.stringify({ deviceId, deviceInfo: DEVICE_INFO }),
  });
  await expectStatus(response, 201, `POST /v1/devices (${deviceId})`);
  const body = (await response.json()) as { deviceToken: string; deviceSecret: string; device: { fingerprint: string } };
  return { deviceId, deviceToken: body.deviceToken, deviceSecret: body.deviceSecret, fingerprint: body.device.fingerprint };
}

/** The renewal an app sends when its device token runs out (SPEC §2): the same device id, with its secret. */
export function renewalBody(device: Device): string {
  return JSON.stringify({ deviceId: device.deviceId, deviceInfo: DEVICE_INFO, deviceSecret: device.deviceSecret });
}

/**
 * The viewer's browser at the simulator: authenticate/{sp}/{code} → MVPD login page → the form
 * posted with any username and the password `pass` (SPEC §10) → 302 to the redirect URL.
 */
export async function mvpdLogin(simUrl: string, code: string, username: string): Promise<void> {
  const start = await expectStatus(await fetch(`${simUrl}/api/v2/authenticate/${SERVICE_PROVIDER}/${code}`, { redirect: 'manual' }), 302, 'sim authenticate');
  const loginUrl = new URL(start.headers.get('location') ?? '', simUrl);
  const page = await (await expectStatus(await fetch(loginUrl, { redirect: 'manual' }), 200, 'sim MVPD login page')).text();
  const session = /name="session" value="([^"]+)"/.exec(page)?.[1];
  if (!session) throw new Error('bench: the MVPD login page has no session field');
  loginUrl.search = '';
  await expectStatus(
    await fetch(loginUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ session, username, password: 'pass' }).toString(),
    }),
    302,
    'sim MVPD login',
  );
}

const bearer = (device: Device) => ({ authorization: `Bearer ${device.deviceToken}`, 'content-type': 'application/json' });

/**
 * The app's sign-in: POST /v1/authentication with the MVPD, the viewer signs in on the second
 * screen, the app long-polls the code until passgate has seen the profile.
 */
export async function signIn(passgateUrl: string, simUrl: string, device: Device, username = 'bench-viewer'): Promise<void> {
  const started = await expectStatus(
    await callPassgate(`${passgateUrl}/v1/authentication`, { method: 'POST', headers: bearer(device), body: JSON.stringify({ mvpd: MVPD }) }),
    201,
    'POST /v1/authentication',
  );
  const { code } = (await started.json()) as { code: string };
  await mvpdLogin(simUrl, code, username);
  for (let attempt = 0; attempt < 5; attempt++) {
    const status = await expectStatus(await callPassgate(`${passgateUrl}/v1/authentication/${code}?wait=10`, { headers: bearer(device) }), 200, 'GET /v1/authentication/{code}');
    const body = (await status.json()) as { status: string };
    if (body.status === 'authenticated') return;
    if (body.status !== 'pending') throw new Error(`bench: sign-in ended ${body.status}`);
  }
  throw new Error('bench: sign-in still pending after 5 long-polls');
}

export const authorizeBody = (withDrm: boolean) => JSON.stringify({ resource: RESOURCE, ...(withDrm ? { drm: DRM } : {}) });

/** POST /v1/authorize with `drm`: the playback start that caches the Permit. */
export async function authorize(passgateUrl: string, device: Device): Promise<void> {
  await expectStatus(await callPassgate(`${passgateUrl}/v1/authorize`, { method: 'POST', headers: bearer(device), body: authorizeBody(true) }), 200, 'POST /v1/authorize');
}

/** A device registered, signed in and holding a cached Permit for REF30. */
export async function permittedDevice(passgateUrl: string, simUrl: string, deviceId: string): Promise<Device> {
  const device = await registerDevice(passgateUrl, deviceId);
  await signIn(passgateUrl, simUrl, device);
  await authorize(passgateUrl, device);
  return device;
}

/** A DCR client of the bench's own at the simulator, signed in: the headers of a direct decisions/authorize call. */
export async function directClient(simUrl: string, deviceId: string, ip: string): Promise<Record<string, string>> {
  const deviceInfo = Buffer.from(JSON.stringify({ ...DEVICE_INFO, connectionIp: ip, connectionPort: 40_000 })).toString('base64');
  const common = { 'x-device-info': deviceInfo, 'x-forwarded-for': ip, accept: 'application/json' };
  const registered = await expectStatus(
    await fetch(`${simUrl}/o/client/register`, {
      method: 'POST',
      headers: { ...common, 'content-type': 'application/json;charset=utf-8' },
      body: JSON.stringify({ software_statement: softwareStatement() }),
    }),
    201,
    'sim DCR register',
  );
  const client = (await registered.json()) as { client_id: string; client_secret: string };
  const tokenAnswer = await expectStatus(
    await fetch(`${simUrl}/o/client/token`, {
      method: 'POST',
      headers: { ...common, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: client.client_id, client_secret: client.client_secret, grant_type: 'client_credentials' }).toString(),
    }),
    201,
    'sim DCR token',
  );
  const { access_token } = (await tokenAnswer.json()) as { access_token: string };
  const headers = { ...common, authorization: `Bearer ${access_token}`, 'ap-device-identifier': `fingerprint ${Buffer.from(deviceId).toString('base64')}` };
  const session = await expectStatus(
    await fetch(`${simUrl}/api/v2/${SERVICE_PROVIDER}/sessions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ mvpd: MVPD, domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' }).toString(),
    }),
    200,
    'sim sessions create',
  );
  const { code } = (await session.json()) as { code: string };
  await mvpdLogin(simUrl, code, 'bench-direct');
  return { ...headers, 'content-type': 'application/json;charset=utf-8' };
}

/** The decisions/authorize request passgate sends for POST /v1/authorize {resource: REF30}. */
export const directAuthorizePath = `/api/v2/${SERVICE_PROVIDER}/decisions/authorize/${MVPD}`;
export const directAuthorizeBody = JSON.stringify({ resources: [RESOURCE] });

/** Runs `task` for 0..count-1 with at most `concurrency` at once; `onProgress` after each. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>, onProgress?: (done: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        await task(i);
        done++;
        onProgress?.(done);
      }
    }),
  );
}
