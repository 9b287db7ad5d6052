import type { ExecutionContext } from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import type { SimRulesInput } from '../../src/sim/rules.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { newDeviceId, withPassgate, type PassgateFixture, type WithPassgateOptions } from '../helpers/with-passgate.js';

/** The problem+json body passgate answers with. */
export interface ProblemBody {
  status: number;
  code: string;
  detail: string;
  upstream?: { code: string; action?: string; message?: string; details?: string };
  errors?: { path: string; message: string }[];
}

export interface Device {
  token: string;
  appId: string;
  /** passgate's id of the device binding (what permits, sessions and revocations are keyed by). */
  binding: string;
  /** The base64 identifier (what the simulator keys profiles by, with the client id). */
  fingerprint: string;
  clientId: string;
  deviceId: string;
  /** The binding's secret, as POST /v1/devices returned it (apps keep it to renew). */
  deviceSecret: string;
}

export interface EntitlementFixture extends PassgateFixture {
  clock: ManualClock;
  /** POST a JSON body as the device. */
  post(device: Device, path: string, body: unknown): Promise<Response>;
  /** Registers a device through POST /v1/devices. */
  device(): Promise<Device>;
  /** Signs the device in with the MVPD as the upstream would after an MVPD login (a profile in the simulator). */
  signIn(device: Device, mvpd?: string): void;
  /** Upstream calls of one operation since the fixture started. */
  calls(operation: string): Promise<SimLogEntry[]>;
}

/** The demo world plus catch-all permits; the throttle is off (a frozen clock, many calls from one IP). */
export const demoEntitlements = [
  { mvpd: 'Cablevision', resource: 'PREMIUM', decision: 'deny' as const, error: 'authorization_denied_by_mvpd', details: 'Your subscription package does not include the "PREMIUM" channel' },
  { mvpd: 'Cablevision', resource: '*', decision: 'permit' as const },
];

export async function withEntitlement(
  t: ExecutionContext,
  simRules: Partial<SimRulesInput> = {},
  extra: Partial<WithPassgateOptions> & { clock?: ManualClock } = {},
): Promise<EntitlementFixture> {
  const clock = extra.clock ?? new ManualClock(Date.now());
  const f = await withPassgate(t, {
    ...extra,
    clock,
    simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 }, entitlements: demoEntitlements, ...simRules },
    file: { throttle: { rate_per_second: 1000, burst: 100_000, max_wait_ms: 0 }, ...extra.file },
  });
  const post = (device: Device, path: string, body: unknown) =>
    f.call(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${device.token}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  return {
    ...f,
    clock,
    post,
    async device() {
      const deviceId = newDeviceId();
      const response = await f.register({ deviceId });
      if (response.status !== 201) throw new Error(`POST /v1/devices answered ${response.status}: ${await response.text()}`);
      const body = (await response.json()) as { deviceToken: string; deviceSecret: string; device: { app: string; binding: string; fingerprint: string } };
      const record = await f.passgate.services.pass.registry.get(body.device.app, body.device.binding);
      if (!record) throw new Error('the registered device has no DCR record');
      return {
        token: body.deviceToken,
        appId: body.device.app,
        binding: body.device.binding,
        fingerprint: body.device.fingerprint,
        clientId: record.clientId,
        deviceId,
        deviceSecret: body.deviceSecret,
      };
    },
    signIn(device, mvpd = 'Cablevision') {
      const now = f.sim.state.now();
      f.sim.state.saveProfile({
        clientId: device.clientId,
        deviceId: device.fingerprint,
        serviceProvider: 'REF30',
        mvpd,
        notBefore: now,
        notAfter: now + 24 * 3600_000,
        issuer: mvpd,
        type: 'regular',
        attributes: { userID: { value: 'viewer-1', state: 'plain' } },
        userId: 'viewer-1',
      });
    },
    calls: async (operation) => (await f.simLog()).filter((entry) => entry.operation === operation),
  };
}

/** The simulator's stored profiles of a device (what "signed in upstream" means). */
export const upstreamProfiles = (f: EntitlementFixture, device: Device) =>
  [...f.sim.state.profiles.values()].filter((p) => p.clientId === device.clientId && p.deviceId === device.fingerprint);
