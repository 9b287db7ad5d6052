import test from 'ava';
import { UpstreamProblem } from '../../src/pass/errors.js';
import type { DeviceContext } from '../../src/pass/client.js';
import { withSim } from '../helpers/with-sim.js';
import { loginThroughMvpd } from '../helpers/mvpd-login.js';
import { APP_ID, byOperation, decodeDeviceInfo, deviceAddress, newDeviceId, registeredInfo, simLog, withPass } from '../helpers/pass-fixture.js';

/** The pinned vector of test/pass/device-identity.test.ts. */
const PINNED_ID = 'ba23d141-d715-561c-94f4-e9e4c966b1eb';
const PINNED_FINGERPRINT = 'fingerprint ZTNhMGNlMzY2NjM4ZTBmNjQxMmU2MzViMDA5OTAzNjE3NWVkOGQ1ZjgzZGJjNzdiN2Q0YWM0ZjNiNzdhNjJmYg==';
const unthrottled = { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } };

async function setup(t: Parameters<typeof withSim>[0], deviceId = newDeviceId()) {
  const f = await withSim(t, unthrottled);
  const p = await withPass(t, f, { config: { throttle: { ratePerSecond: 1, burst: 1000, maxWaitMs: 0 } } });
  const client = { ip: '198.51.100.77', port: 52_001 };
  const device = await p.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client });
  return { f, p, ctx: { device, client } as DeviceContext };
}

test('every call of the whole flow carries exactly the headers the upstream expects (DCR included)', async (t) => {
  const { f, p, ctx } = await setup(t, PINNED_ID);
  const pass = p.services.pass;
  // Another request of the same device, from another source port.
  const later: DeviceContext = { device: ctx.device, client: { ip: ctx.client.ip, port: 52_002 } };

  await pass.configuration(ctx);
  const session = await pass.createSession(ctx, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  await pass.getSession(later, session.code ?? '');
  await pass.resumeSession(ctx, session.code ?? '', { redirectUrl: 'https://adobe.com/done' });
  await loginThroughMvpd(f, session.url ?? '', 'viewer-1', 'pass');
  await pass.profileByCode(ctx, session.code ?? '');
  await pass.profiles(later);
  await pass.profileForMvpd(ctx, 'Cablevision');
  await pass.preauthorize(ctx, 'Cablevision', ['REF30', 'PREMIUM']);
  await pass.authorize(later, 'Cablevision', ['REF30']);
  await pass.logout(ctx, 'Cablevision', 'https://passgate.invalid/activate/done');

  const entries = (await simLog(f)).filter((e) => e.path.startsWith('/api/v2/REF30') || e.path.startsWith('/o/client/'));
  t.deepEqual(
    entries.map((e) => e.operation),
    [
      'dcr.register',
      'dcr.token',
      'configuration',
      'sessions.create',
      'sessions.get',
      'sessions.resume',
      'profiles.code',
      'profiles.all',
      'profiles.mvpd',
      'decisions.preauthorize',
      'decisions.authorize',
      'logout',
    ],
  );
  const issued = f.sim.state.tokens.size;
  t.true(issued >= 1);
  for (const entry of entries) {
    const where = `${entry.method} ${entry.path}`;
    t.is(entry.headers['x-forwarded-for'], '198.51.100.77', where);
    const info = decodeDeviceInfo(entry.headers['x-device-info']);
    t.like(info, registeredInfo, where);
    t.is(info.connectionIp, '198.51.100.77', where);
    t.true(info.connectionPort === 52_001 || info.connectionPort === 52_002, where);
    t.is(entry.headers.accept, 'application/json;charset=utf-8', where);
    if (entry.path.startsWith('/o/client/')) {
      // DCR expects no Authorization and no AP-Device-Identifier (adobe-pass.md §2.2, §2.3).
      t.is(entry.headers['ap-device-identifier'], undefined, where);
      t.is(entry.headers.authorization, undefined, where);
    } else {
      t.is(entry.headers['ap-device-identifier'], PINNED_FINGERPRINT, where);
      t.regex(entry.headers.authorization ?? '', /^Bearer sha256:[0-9a-f]{12}$/, where);
      t.true(entry.status < 300, `${where} answered ${entry.status}`);
    }
  }
  const port = (operation: string) => decodeDeviceInfo(byOperation(entries, operation)[0]?.headers['x-device-info']).connectionPort;
  t.is(port('sessions.get'), 52_002);
  t.is(port('sessions.create'), 52_001);
  // Content types: JSON for DCR register and decisions, forms for sessions and the token call.
  t.regex(byOperation(entries, 'dcr.register')[0]?.headers['content-type'] ?? '', /^application\/json;\s*charset=utf-8$/);
  t.is(byOperation(entries, 'dcr.token')[0]?.headers['content-type'], 'application/x-www-form-urlencoded');
  t.is(byOperation(entries, 'sessions.create')[0]?.headers['content-type'], 'application/x-www-form-urlencoded');
  t.regex(byOperation(entries, 'decisions.authorize')[0]?.headers['content-type'] ?? '', /^application\/json;\s*charset=utf-8$/);
  t.is(byOperation(entries, 'configuration')[0]?.headers['content-type'], undefined);
  t.deepEqual(byOperation(entries, 'logout')[0]?.query, { redirectUrl: 'https://passgate.invalid/activate/done' });
});

test('typed answers: session timestamps (strings upstream) become numbers, decisions carry per-item errors', async (t) => {
  const { f, p, ctx } = await setup(t);
  const pass = p.services.pass;

  const configuration = await pass.configuration(ctx);
  t.true(configuration.mvpds.some((m) => m.id === 'Cablevision'));

  const session = await pass.createSession(ctx, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  t.is(session.actionName, 'authenticate');
  t.is(typeof session.notBefore, 'number');
  t.is(typeof session.notAfter, 'number');
  t.is((session.notAfter ?? 0) - (session.notBefore ?? 0), 30 * 60_000);

  const info = await pass.getSession(ctx, session.code ?? '');
  t.is(typeof info.notAfter, 'number');
  t.is(info.existingParameters.mvpd, 'Cablevision');

  t.deepEqual((await pass.profileByCode(ctx, session.code ?? '')).profiles, {});
  await loginThroughMvpd(f, session.url ?? '', 'viewer-1', 'pass');
  const byCode = await pass.profileByCode(ctx, session.code ?? '');
  t.is(typeof byCode.profiles.Cablevision?.notAfter, 'number');

  const decisions = await pass.preauthorize(ctx, 'Cablevision', ['REF30', 'PREMIUM']);
  t.like(decisions.decisions[0], { resource: 'REF30', authorized: true });
  t.like(decisions.decisions[1], {
    resource: 'PREMIUM',
    authorized: false,
    error: { code: 'preauthorization_denied_by_mvpd', action: 'none', status: 403, remedy: 'none' },
  });
  const authorized = await pass.authorize(ctx, 'Cablevision', ['REF30']);
  t.is(typeof authorized.decisions[0]?.token?.serializedToken, 'string');
  t.is(typeof authorized.decisions[0]?.notAfter, 'number');

  const logout = await pass.logout(ctx, 'Cablevision', 'https://passgate.invalid/done');
  t.is(logout.logouts.Cablevision?.actionName, 'logout');
  t.is((await pass.logout(ctx, 'Cablevision', 'https://passgate.invalid/done')).logouts.Cablevision?.actionName, 'invalid');
});

test('top-level enhanced errors are thrown as typed UpstreamProblems', async (t) => {
  const { p, ctx } = await setup(t);
  const error = await t.throwsAsync(p.services.pass.authorize(ctx, 'Cablevision', ['REF30']));
  t.true(error instanceof UpstreamProblem);
  const problem = error as UpstreamProblem;
  t.is(problem.info.code, 'authenticated_profile_missing');
  t.is(problem.remedy, 'reauthenticate');
  t.is(problem.code, 'upstream_rejected');
  t.like(problem.toBody().upstream, { code: 'authenticated_profile_missing', action: 'authentication' });

  const unknownMvpd = await t.throwsAsync(p.services.pass.profileForMvpd(ctx, 'NoSuchMvpd'));
  t.is((unknownMvpd as UpstreamProblem).info.code, 'invalid_parameter_mvpd');
});

test('identical concurrent reads of one device share one call; another device never shares it', async (t) => {
  const { f, p, ctx } = await setup(t);
  const otherClient = deviceAddress();
  const other = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: otherClient });
  const pass = p.services.pass;

  const answers = await Promise.all([
    ...Array.from({ length: 10 }, () => pass.configuration(ctx)),
    ...Array.from({ length: 5 }, () => pass.configuration({ device: other, client: otherClient })),
  ]);

  t.is(answers.length, 15);
  const configuration = byOperation(await simLog(f), 'configuration');
  t.is(configuration.length, 2);
  t.deepEqual([...new Set(configuration.map((e) => e.headers['ap-device-identifier']))].sort(), [ctx.device.fingerprint, other.fingerprint].sort());
  // POSTs are never coalesced.
  await Promise.all(Array.from({ length: 3 }, () => pass.createSession(ctx, {})));
  t.is(byOperation(await simLog(f), 'sessions.create').length, 3);
});
