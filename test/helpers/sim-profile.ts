import type { SimProfile } from '../../src/sim/state.js';
import type { RegisteredDevice, SimFixture } from './with-sim.js';

/** One item of a decisions answer (adobe-pass.md §4.7). */
export interface DecisionItem {
  resource: string;
  serviceProvider: string;
  mvpd: string;
  source: string;
  authorized: boolean;
  token?: { notBefore: number; notAfter: number; serializedToken: string };
  notBefore?: number;
  notAfter?: number;
  error?: { action: string; status: number; code: string; message: string; details?: string; helpUrl: string; trace: string };
}

/** Rules that switch the throttle off: these tests make many calls from one device on a frozen clock. */
export const unthrottled = { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } };

/** The profile key part the simulator stores for a device: the base64 of its fingerprint header (§3.1). */
export const storedDeviceId = (device: RegisteredDevice) => Buffer.from(device.deviceId).toString('base64');

/**
 * Saves a profile for the device straight into the simulator's state, as if the MVPD login had
 * happened: a regular profile with the sample's attributes, valid for a day unless overridden.
 */
export function giveProfile(
  f: SimFixture,
  device: RegisteredDevice,
  mvpd = 'Cablevision',
  overrides: Partial<Omit<SimProfile, 'key'>> = {},
): SimProfile {
  const now = f.sim.state.now();
  const userId = overrides.userId ?? 'viewer-1';
  return f.sim.state.saveProfile({
    clientId: device.clientId,
    deviceId: storedDeviceId(device),
    serviceProvider: 'REF30',
    mvpd,
    notBefore: now,
    notAfter: now + 24 * 3600_000,
    issuer: mvpd,
    type: 'regular',
    attributes: {
      userID: { value: userId, state: 'plain' },
      householdID: { value: 'household-1', state: 'plain' },
      zip: { value: 'ZW5jcnlwdGVkLXppcA==', state: 'enc' },
    },
    userId,
    ...overrides,
  });
}

/** GET a REST API V2 path as the device, with its usual headers (changed by `extra`). */
export function getAs(f: SimFixture, device: RegisteredDevice, path: string, extra: Record<string, string> = {}) {
  return f.call(path, { headers: device.headers(extra) });
}

/** The enhanced error body's `status code` pair plus the HTTP status, for compact assertions. */
export async function errorOf(response: Response): Promise<string> {
  const body = (await response.json()) as { status: number; code: string };
  return `${response.status} ${body.code} (${body.status})`;
}

/**
 * The whole browser flow as a viewer would do it: create a session, open the authenticate URL,
 * sign in on the simulator's MVPD login page. Returns the session's code; the login page's answer
 * (a redirect to redirectUrl) is checked by the caller through `loggedIn`.
 */
export async function startSession(f: SimFixture, device: RegisteredDevice, mvpd = 'Cablevision', redirectUrl = 'https://adobe.com/done') {
  const created = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: device.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
    body: new URLSearchParams({ mvpd, domainName: 'adobe.com', redirectUrl }).toString(),
  });
  if (created.status !== 200) throw new Error(`sessions answered ${created.status}: ${await created.text()}`);
  const { code } = (await created.json()) as { code: string };
  return {
    code,
    /** Opens /authenticate and submits the MVPD login form; resolves to the login's final response. */
    async signIn(username = 'viewer-1', password = 'pass'): Promise<Response> {
      const opened = await f.call(`/api/v2/authenticate/REF30/${code}`);
      if (opened.status !== 302) throw new Error(`authenticate answered ${opened.status}: ${await opened.text()}`);
      const transaction = new URL(opened.headers.get('location') ?? '', f.url).searchParams.get('session') ?? '';
      return f.call(`/sim/mvpd/${encodeURIComponent(mvpd)}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ session: transaction, username, password }).toString(),
      });
    },
  };
}
