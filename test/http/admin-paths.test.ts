import test from 'ava';
import { request } from 'node:http';
import { ADMIN_KEY, withAdmin, withDrm, type AdminFixture, type Device } from '../drm/drm-fixture.js';

/**
 * SPEC §7/§8: the admin API answers only on the ops listener, only with the admin key, and only
 * under its one spelling. Every admin route is sent under path variants an attacker would try,
 * to both listeners, with no key, a wrong key and the right key. The requests go out raw
 * (node:http `path`), since fetch would normalise dot segments and percent-encoding away.
 */

interface Answer {
  status: number;
  type: string;
  code: string | undefined;
}

function send(base: string, method: string, path: string, key: string | undefined, body: unknown): Promise<Answer> {
  const url = new URL(base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { code?: string }).code;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), code });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The spellings of `/admin/<rest>` that must never reach a handler. */
function variants(path: string): string[] {
  const rest = path.slice('/admin'.length);
  return [
    `/ADMIN${rest}`,
    `/Admin${rest}`,
    `/aDmIn${rest}`,
    `/%61dmin${rest}`,
    `/%61%64%6d%69%6e${rest}`,
    `//admin${rest}`,
    `/admin/.${rest}`,
    `/admin/x/..${rest}`,
    `/v1/..${path}`,
    `${path}/`,
    `${path}//`,
    `/admin${rest.replace('/', '%2F')}`,
    `${path.slice(0, -1)}%${path.charCodeAt(path.length - 1).toString(16)}`,
    `${path};x`,
  ];
}

interface AdminRoute {
  method: string;
  path: string;
  body?: (device: Device) => unknown;
  /** What the handler answers with the right key (its own outcome, whatever it is). */
  handled: { status: number; code?: string };
}

const ref = (device: Device) => ({ app: device.appId, fingerprint: device.fingerprint });

// In this order, so that each handled call has a definite answer (revoke before lift, allow before remove).
const routes: AdminRoute[] = [
  { method: 'GET', path: '/admin/drm/revocations', handled: { status: 200 } },
  { method: 'POST', path: '/admin/drm/revocations', body: (d) => ({ device: ref(d), reason: 'path test' }), handled: { status: 201 } },
  { method: 'POST', path: '/admin/drm/allow-list', body: (d) => ({ device: ref(d), note: 'path test' }), handled: { status: 201 } },
  { method: 'POST', path: '/admin/drm/allow-list/remove', body: (d) => ({ device: ref(d) }), handled: { status: 204 } },
  { method: 'POST', path: '/admin/drm/revocations/lift', body: (d) => ({ device: ref(d) }), handled: { status: 204 } },
  { method: 'GET', path: '/admin/drm/playready/revallowinfo', handled: { status: 200 } },
  { method: 'PUT', path: '/admin/drm/playready/revallowinfo', body: () => ({ hashes: [] }), handled: { status: 200 } },
  // No revinfo_url in this configuration: the handler's own answer.
  { method: 'POST', path: '/admin/drm/playready/revinfo/refresh', handled: { status: 404, code: 'drm_not_configured' } },
  { method: 'POST', path: '/admin/notifications', body: (d) => ({ device: ref(d), invalidate: ['profiles'] }), handled: { status: 200 } },
  { method: 'POST', path: '/admin/devices/revoke-tokens', body: (d) => ({ device: ref(d) }), handled: { status: 200 } },
];

const keys = { none: undefined, wrong: `${ADMIN_KEY.slice(0, -1)}X`, right: ADMIN_KEY } as const;

async function revokedDevice(f: AdminFixture): Promise<Device> {
  const device = await f.signedIn();
  const authorized = await f.authorize(device, 'REF30');
  if (authorized.status !== 200) throw new Error(`authorize REF30: ${authorized.status}`);
  const revoked = await f.admin('POST', '/admin/drm/revocations', { device: ref(device), reason: 'operator revoked it' });
  if (revoked.status !== 201) throw new Error(`revoke: ${revoked.status}`);
  return device;
}

test('every admin route, every spelling, both listeners, three keys: only the right key on the ops listener and the exact path gets through', async (t) => {
  const f = await withAdmin(t);
  const target = await f.device();
  const listeners = { public: f.passgate.url, ops: f.passgate.opsUrl };
  let sent = 0;
  for (const route of routes) {
    const body = route.body?.(target);
    for (const [listener, base] of Object.entries(listeners)) {
      for (const [keyName, key] of Object.entries(keys)) {
        for (const path of [...variants(route.path), route.path]) {
          const canonical = path === route.path;
          // The handled call runs once per route, last, after every refused spelling.
          if (canonical && listener === 'ops' && keyName === 'right') continue;
          const answer = await send(base, route.method, path, key, body);
          sent += 1;
          const what = `${route.method} ${path} on ${listener} with ${keyName} key`;
          t.true(answer.type.startsWith('application/problem+json'), `${what}: ${answer.type}`);
          if (listener === 'ops' && canonical) {
            t.deepEqual([answer.status, answer.code], [401, 'unauthorized'], what);
          } else {
            t.deepEqual([answer.status, answer.code], [404, 'not_found'], what);
          }
        }
      }
    }
    const handled = await send(listeners.ops, route.method, route.path, keys.right, body);
    sent += 1;
    t.is(handled.status, route.handled.status, `${route.method} ${route.path} with the right key on the ops listener`);
    if (route.handled.code) t.is(handled.code, route.handled.code);
  }
  t.log(`${sent} requests`);
});

test('the chained attack: an operator revokes a device; allow-listing it under any spelling without the key fails, and it gets no license', async (t) => {
  const f = await withAdmin(t);
  const victim = await revokedDevice(f);
  for (const base of [f.passgate.url, f.passgate.opsUrl]) {
    for (const key of [keys.none, keys.wrong]) {
      for (const path of [...variants('/admin/drm/allow-list'), '/admin/drm/allow-list']) {
        const answer = await send(base, 'POST', path, key, { device: ref(victim), note: 'let me in' });
        t.true(answer.status === 401 || answer.status === 404, `${path}: ${answer.status}`);
      }
    }
  }
  const listed = (await (await f.admin('GET', '/admin/drm/revocations')).json()) as { revoked: unknown[]; allowed: unknown[] };
  t.is(listed.revoked.length, 1);
  t.deepEqual(listed.allowed, []);
  const license = await f.licenseToken(victim, 'REF30', 'widevine', 'ref30-movie');
  t.is(license.status, 403);
  t.is(((await license.json()) as { code: string }).code, 'device_revoked');
});

test('without PASSGATE_ADMIN_KEY the admin API is off on both listeners, whatever key is sent', async (t) => {
  const f = await withDrm(t);
  for (const base of [f.passgate.url, f.passgate.opsUrl]) {
    for (const key of Object.values(keys)) {
      const answer = await send(base, 'GET', '/admin/drm/revocations', key, undefined);
      t.deepEqual([answer.status, answer.code], [404, 'not_found']);
    }
  }
  // /metrics is still served.
  t.is((await fetch(f.passgate.metricsUrl)).status, 200);
});

test('the public port has no /metrics and the ops port no public API', async (t) => {
  const f = await withAdmin(t);
  for (const path of ['/metrics', '/METRICS']) t.is((await send(f.passgate.url, 'GET', path, undefined, undefined)).status, 404);
  for (const path of ['/v1/device', '/livez', '/activate', '/drm/playready/revallowinfo', '/Metrics', '/metrics/']) {
    t.is((await send(f.passgate.opsUrl, 'GET', path, undefined, undefined)).status, 404, path);
  }
  const post = await send(f.passgate.opsUrl, 'POST', '/metrics', undefined, {});
  t.deepEqual([post.status, post.code], [405, 'method_not_allowed']);
});
