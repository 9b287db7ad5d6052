import type { ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { DEMO_DEVICE_INFO } from '../../src/demo/script.js';
import { ManualClock } from '../../src/infra/clock.js';
import { defaultRules, simRulesSchema, type SimRulesInput } from '../../src/sim/rules.js';
import { startSim, type RunningSim } from '../../src/sim/server.js';

/** The demo software statement of config/example.yaml (alg none, obviously fake). */
export const demoSoftwareStatement = [
  Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url'),
  Buffer.from(
    JSON.stringify({
      software_id: 'passgate-demo-restv2',
      software_version: '1.0.0',
      iss: 'passgate-sim',
      sub: 'passgate-demo',
      scopes: ['api:client:v2'],
      iat: 1767225600,
      jti: 'demo-not-a-secret',
    }),
  ).toString('base64url'),
  'demo-signature-not-secret',
].join('.');

/** What an app registers (adobe-pass.md §3.3 required keys and a few optional ones); no connection fields. */
export const appDeviceInfo = DEMO_DEVICE_INFO;

/** X-Device-Info as passgate sends it: the registered info plus the request's connection. */
export const deviceInfo = {
  ...appDeviceInfo,
  connectionIp: '203.0.113.7',
  connectionPort: 51_234,
};

export const encodedDeviceInfo = (info: object = deviceInfo) => Buffer.from(JSON.stringify(info)).toString('base64');

/** `fingerprint <base64>` of a device id, as passgate sends it. */
export const fingerprint = (id: string) => `fingerprint ${Buffer.from(id).toString('base64')}`;

export interface SimFixture {
  sim: RunningSim;
  clock: ManualClock;
  url: string;
  /** fetch against the simulator with a path. */
  call(path: string, init?: RequestInit): Promise<Response>;
}

let nextIp = 1;
/** A fresh documentation-range IP per caller, so throttle buckets never collide between tests. */
export function freshIp(): string {
  const n = nextIp++;
  return `198.51.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

/**
 * Starts a real simulator on 127.0.0.1:0 with a manual clock and the default demo rules
 * (optionally changed), and stops it when the test ends.
 */
export async function withSim(t: ExecutionContext, rules: Partial<SimRulesInput> = {}): Promise<SimFixture> {
  const clock = new ManualClock(Date.UTC(2026, 10, 24, 12, 0, 0));
  const sim = await startSim({ port: 0, clock, rules: simRulesSchema.parse({ ...defaultRules(), ...rules }) });
  t.teardown(() => sim.close());
  return {
    sim,
    clock,
    url: sim.url,
    call: (path, init) => fetch(new URL(path, sim.url), { redirect: 'manual', ...init }),
  };
}

export interface RegisteredDevice {
  clientId: string;
  clientSecret: string;
  accessToken: string;
  deviceId: string;
  ip: string;
  /** The headers every REST API V2 call of this device carries (§3.1). */
  headers(extra?: Record<string, string>): Record<string, string>;
}

/** DCR register + token over HTTP, as a well-behaved programmer service would. */
export async function registerDevice(f: SimFixture, deviceId = `device-${Math.random().toString(36).slice(2)}`): Promise<RegisteredDevice> {
  const ip = freshIp();
  const common = { 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': ip };
  const reg = await f.call('/o/client/register', {
    method: 'POST',
    headers: { ...common, 'content-type': 'application/json;charset=utf-8' },
    body: JSON.stringify({ software_statement: demoSoftwareStatement, redirect_uri: 'https://passgate.invalid/activate/done' }),
  });
  if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${await reg.text()}`);
  const client = (await reg.json()) as { client_id: string; client_secret: string };
  const tok = await f.call('/o/client/token', {
    method: 'POST',
    headers: { ...common, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: client.client_id, client_secret: client.client_secret, grant_type: 'client_credentials' }).toString(),
  });
  if (tok.status !== 201) throw new Error(`token answered ${tok.status}: ${await tok.text()}`);
  const token = (await tok.json()) as { access_token: string };
  return {
    clientId: client.client_id,
    clientSecret: client.client_secret,
    accessToken: token.access_token,
    deviceId,
    ip,
    headers: (extra = {}) => ({
      authorization: `Bearer ${token.access_token}`,
      'ap-device-identifier': fingerprint(deviceId),
      'x-device-info': encodedDeviceInfo(),
      'x-forwarded-for': ip,
      ...extra,
    }),
  };
}

/** The JSON type tree of a value: what "the same shape" means for documented samples. */
export function shapeOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shapeOf(value[0])];
  if (value === null) return 'null';
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as object).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shapeOf(v)]));
  }
  return typeof value;
}

/**
 * Where `actual` lacks a field of the documented `sample` or has it with another JSON type.
 * Empty when every documented field is there with its documented type (extra fields allowed).
 */
export function shapeMismatches(sample: unknown, actual: unknown, path = '$'): string[] {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(sample) !== kind(actual)) return [`${path}: expected ${kind(sample)}, got ${kind(actual)}`];
  if (Array.isArray(sample) && Array.isArray(actual)) {
    if (sample.length === 0) return [];
    if (actual.length === 0) return [`${path}: expected a non-empty array`];
    return shapeMismatches(sample[0], actual[0], `${path}[0]`);
  }
  if (kind(sample) === 'object') {
    const a = actual as Record<string, unknown>;
    return Object.entries(sample as Record<string, unknown>).flatMap(([key, value]) =>
      key in a ? shapeMismatches(value, a[key], `${path}.${key}`) : [`${path}.${key}: missing`],
    );
  }
  return [];
}

/** Documented sample responses (test/fixtures/adobe-pass-samples.json). */
export const samples = JSON.parse(readFileSync(new URL('../fixtures/adobe-pass-samples.json', import.meta.url), 'utf8')) as Record<
  string,
  unknown
>;
