import type { ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ManualClock } from '../../src/infra/clock.js';
import type { SimRulesInput } from '../../src/sim/rules.js';
import { hiddenSession } from '../helpers/mvpd-login.js';
import { unthrottled } from '../helpers/sim-profile.js';
import { newDeviceId, withPassgate, type PassgateFixture, type WithPassgateOptions } from '../helpers/with-passgate.js';

export const KEYS = `k1:${Buffer.alloc(32, 9).toString('base64')}`;

/** passgate + simulator on one ManualClock, throttles out of the way (many calls from 127.0.0.1 on a frozen clock). */
export function signinFixture(t: ExecutionContext, clock: ManualClock, options: Partial<WithPassgateOptions> & { simRules?: Partial<SimRulesInput> } = {}) {
  return withPassgate(t, {
    clock,
    env: { PASSGATE_KEYS: KEYS },
    simRules: { ...unthrottled, ...options.simRules },
    ...options,
    file: {
      throttle: { rate_per_second: 1000, burst: 100000, max_wait_ms: 0 },
      signin: { hidden_mvpds: ['AdobePass_TEST'], poll_interval_ms: 5000 },
      ...options.file,
    },
  });
}

export interface Device {
  token: string;
  /** passgate's binding id (keys of sessions, profiles, the chosen MVPD). */
  binding: string;
  /** The upstream identifier (what the simulator keys profiles by, with the client id). */
  fingerprint: string;
  headers: Record<string, string>;
}

export async function registerDevice(f: PassgateFixture): Promise<Device> {
  const response = await f.register({ deviceId: newDeviceId() });
  if (response.status !== 201) throw new Error(`register answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { deviceToken: string; device: { binding: string; fingerprint: string } };
  return { token: body.deviceToken, binding: body.device.binding, fingerprint: body.device.fingerprint, headers: { authorization: `Bearer ${body.deviceToken}` } };
}

export const getJson = async (f: PassgateFixture, device: Device, path: string, init: RequestInit = {}) => {
  const response = await f.call(path, { ...init, headers: { ...device.headers, ...(init.headers as Record<string, string>) } });
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: (await response.json()) as Record<string, unknown> };
};

export const startAuthentication = (f: PassgateFixture, device: Device, body: unknown = {}) =>
  getJson(f, device, '/v1/authentication', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** The viewer's browser on the simulator: authenticate/{sp}/{code} → MVPD login page → POST the form (password `pass`). */
export async function signInAtSim(f: PassgateFixture, code: string, username = 'viewer-1'): Promise<void> {
  const start = await fetch(`${f.sim.url}/api/v2/authenticate/REF30/${code}`, { redirect: 'manual' });
  if (start.status !== 302) throw new Error(`authenticate answered ${start.status}: ${await start.text()}`);
  const loginUrl = new URL(start.headers.get('location') ?? '', f.sim.url);
  const page = await fetch(loginUrl, { redirect: 'manual' });
  const session = hiddenSession(await page.text());
  loginUrl.search = '';
  const done = await fetch(loginUrl, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ session, username, password: 'pass' }).toString(),
  });
  if (done.status !== 302) throw new Error(`MVPD login answered ${done.status}`);
}

/** Waits (real time, bounded) until `check` holds: requests reaching passgate take a moment. */
export async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** profiles/code polls the simulator saw for `code`. */
export const pollsFor = async (f: PassgateFixture, code: string) =>
  (await f.simLog()).filter((e) => e.operation === 'profiles.code' && e.path.endsWith(`/profiles/code/${code}`)).length;

/** Advance the shared clock by `ms` and run one round on every instance. */
export async function step(clock: ManualClock, instances: PassgateFixture[], ms = 1000): Promise<void> {
  clock.advance(ms);
  for (const instance of instances) await instance.passgate.services.signin.tick();
}
