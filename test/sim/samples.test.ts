/**
 * One test per documented sample response (test/fixtures/adobe-pass-samples.json, whose `_docs`
 * names the AdobeDocs/pass.en file and sample of each key): the simulator is driven into the
 * sample's situation over HTTP and its answer must have the sample's status and shape (the same keys
 * and JSON types at every level; see sample-shape.ts for the two allowances the documents make).
 * Sample titles below are those of the pages; the doc file of each is in the fixture's `_docs`.
 */
import test from 'ava';
import { generateKeyPairSync, sign } from 'node:crypto';
import { defaultRules, type SimRulesInput } from '../../src/sim/rules.js';
import { createSession, form, fullSession, loginThroughMvpd } from '../helpers/mvpd-login.js';
import { giveProfile, startTrial, unthrottled } from '../helpers/sim-profile.js';
import { demoSoftwareStatement, encodedDeviceInfo, registerDevice, samples, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';
import { sampleShapeDiff, underKey } from './sample-shape.js';

const docs = samples._docs as Record<string, string>;
/** An enhanced error's fields of its Structure table that samples may leave out. */
const errorExtras = ['trace', 'details'];
const identity = Buffer.from(JSON.stringify({ email: 'foo@bar.com' })).toString('base64');
const withIdentity = { 'ap-temppass-identity': identity };

interface World {
  f: SimFixture;
  device: RegisteredDevice;
}

interface Case {
  status: number;
  /** Keys the sample omits that the answer may carry (documented elsewhere). */
  optional?: string[];
  /** Rules the scenario needs on top of the demo world (throttle off). */
  rules?: Partial<SimRulesInput>;
  /** Drives the simulator and returns its answer (JSON unless text is said). */
  run(w: World): Promise<Response>;
  /** Turns the answer into what is compared (e.g. the MVPD id key of a profiles map into the sample's). */
  view?(body: unknown): unknown;
  /** The sample part compared, when it is not the whole sample. */
  sample?(whole: unknown): unknown;
  text?: true;
}

const json = (headers: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...headers });
const post = (w: World, path: string, body: unknown, headers: Record<string, string> = {}) =>
  w.f.call(path, { method: 'POST', headers: w.device.headers(json(headers)), body: JSON.stringify(body) });
const get = (w: World, path: string, headers: Record<string, string> = {}) => w.f.call(path, { headers: w.device.headers(headers) });
const authorize = (w: World, mvpd: string, resources: string[], headers: Record<string, string> = {}) =>
  post(w, `/api/v2/REF30/decisions/authorize/${mvpd}`, { resources }, headers);
const preauthorize = (w: World, mvpd: string, resources: string[]) => post(w, `/api/v2/REF30/decisions/preauthorize/${mvpd}`, { resources });
const degrade = (w: World, rule: 'AuthNAll' | 'AuthZAll' | 'AuthZNone') =>
  w.f.call('/sim/config', { method: 'POST', headers: json(), body: JSON.stringify({ degrade: { Cablevision: rule } }) });
const logout = (w: World, mvpd: string) => get(w, `/api/v2/REF30/logout/${mvpd}?redirectUrl=https%3A%2F%2Fadobe.com`);

/** An obviously fake platform identity token (the simulator trusts the values its rules list). */
const PLATFORM_TOKEN = 'FAKE-passgate-test-platform-identity';
/** A key pair made at test time whose public half is "handed to Adobe", and a service token it signs. */
const serviceTokenKey = (() => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    /** Signed for the simulator's clock (`nowMs`), valid for an hour. */
    jws(nowMs: number) {
      const now = Math.floor(nowMs / 1000);
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const signed = `${part({ alg: 'RS256' })}.${part({ iss: 'dtc-identity', sub: 'jane', aud: 'Adobe', iat: now, exp: now + 3600 })}`;
      return `${signed}.${sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`;
    },
  };
})();

/** Another application signed in with the MVPD and sent `token`; this one logs out sending it too. */
async function singleLogout(w: World, token: Record<string, string>): Promise<Response> {
  const first = await registerDevice(w.f);
  giveProfile(w.f, first);
  await w.f.call('/api/v2/REF30/profiles', { headers: first.headers(token) });
  return get(w, '/api/v2/REF30/logout/Cablevision?redirectUrl=https%3A%2F%2Fadobe.com', token);
}

/** POST sessions/{code} as the (secondary) application does: Authorization and a form body. */
function resume(w: World, code: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const { body, ...type } = form(fields);
  return w.f.call(`/api/v2/REF30/sessions/${code}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${w.device.accessToken}`, 'x-forwarded-for': w.device.ip, ...type, ...headers },
    body,
  });
}

/** A session created with `fields`; its code. */
async function codeOf(w: World, fields: Record<string, string>): Promise<string> {
  const response = await createSession(w.f, w.device, fields);
  const body = (await response.json()) as { code?: string };
  if (!body.code) throw new Error(`no code: ${JSON.stringify(body)}`);
  return body.code;
}

/** profiles/code/{code} as the polling application: Authorization only (plus what is given). */
const byCode = (w: World, code: string, headers: Record<string, string> = {}) =>
  w.f.call(`/api/v2/REF30/profiles/code/${code}`, { headers: { authorization: `Bearer ${w.device.accessToken}`, 'x-forwarded-for': w.device.ip, ...headers } });

/** A code resumed with a TempPass MVPD (the resume answers authorize/temporary and starts the trial). */
async function tempPassCode(w: World, mvpd: string, headers: Record<string, string> = {}): Promise<string> {
  const code = await codeOf(w, {});
  const resumed = await resume(w, code, { mvpd, domainName: 'adobe.com', redirectUrl: 'https://adobe.com' }, headers);
  if (resumed.status !== 200) throw new Error(`resume answered ${resumed.status}`);
  return code;
}

/** Three titles through the promotional TempPass (its limit is two): the third is refused. */
async function useUpPromotional(w: World): Promise<Response> {
  await authorize(w, 'flexibleTempPass', ['res01'], withIdentity);
  await authorize(w, 'flexibleTempPass', ['res02'], withIdentity);
  return authorize(w, 'flexibleTempPass', ['res03'], withIdentity);
}

const profilesUnder = (key: string) => (body: unknown) => ({ profiles: underKey((body as { profiles: Record<string, unknown> }).profiles, key) });
const logoutsUnder = (key: string) => (body: unknown) => ({ logouts: underKey((body as { logouts: Record<string, unknown> }).logouts, key) });
const degradedProfile = profilesUnder('${degradedMvpd}');
/** The configuration answer with one MVPD item of a kind (the sample's list mixes kinds). */
const mvpdItem = (tempPass: boolean) => (body: unknown) =>
  (body as { requestor: { mvpds: Record<string, unknown>[] } }).requestor.mvpds.find((m) => (m.isTempPass === true) === tempPass);

const register = (w: World, body: unknown) =>
  w.f.call('/o/client/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': w.device.ip },
    body: JSON.stringify(body),
  });
const token = (w: World, fields: Record<string, string>) =>
  w.f.call('/o/client/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': w.device.ip },
    body: new URLSearchParams(fields).toString(),
  });

const preauthorizeWorld: Partial<SimRulesInput> = {
  entitlements: [
    ...defaultRules().entitlements,
    { mvpd: 'Cablevision', resource: 'resource1 ', decision: 'permit' },
    { mvpd: 'Cablevision', resource: 'resource2', decision: 'permit' },
    { mvpd: 'Cablevision', resource: 'resource3', decision: 'deny', error: 'authorization_denied_by_mvpd' },
  ],
};

/** The demo world with one TempPass MVPD's configuration broken (the "Invalid Configuration" samples). */
const misconfigured = (id: string): Partial<SimRulesInput> => ({
  mvpds: defaultRules().mvpds.map((m) => (m.id === id ? { ...m, tempPassMisconfigured: true } : m)),
});

const cases: Record<string, Case> = {
  'dcr.register': { status: 201, run: (w) => register(w, { software_statement: demoSoftwareStatement, redirect_uri: 'adobepass://com.programmer' }) },
  'dcr.register.error': { status: 400, run: (w) => register(w, {}) },
  'dcr.token': {
    status: 201,
    run: (w) => token(w, { client_id: w.device.clientId, client_secret: w.device.clientSecret, grant_type: 'client_credentials' }),
  },
  'dcr.token.error': { status: 400, run: (w) => token(w, { client_id: w.device.clientId }) },

  configuration: {
    status: 200,
    run: (w) => get(w, '/api/v2/REF30/configuration'),
    view: (body) => ({ ...(body as object), requestor: { ...(body as { requestor: object }).requestor, mvpds: [mvpdItem(false)(body)] } }),
    sample: (whole) => ({ ...(whole as object), requestor: { ...(whole as { requestor: object }).requestor, mvpds: [(whole as { requestor: { mvpds: unknown[] } }).requestor.mvpds[0]] } }),
  },
  'configuration.tempPassMvpd': { status: 200, run: (w) => get(w, '/api/v2/REF30/configuration'), view: mvpdItem(true) },

  'sessions.create.authenticate': { status: 200, run: (w) => createSession(w.f, w.device, fullSession) },
  'sessions.create.resume': { status: 200, run: (w) => createSession(w.f, w.device, {}) },
  'sessions.create.authorize': {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device);
      return createSession(w.f, w.device, fullSession);
    },
  },
  'sessions.create.authorize.temporary': { status: 200, run: (w) => createSession(w.f, w.device, { ...fullSession, mvpd: 'TempPass_TEST40' }) },
  'sessions.create.authorize.degraded': {
    status: 200,
    run: async (w) => {
      await degrade(w, 'AuthNAll');
      return createSession(w.f, w.device, fullSession);
    },
  },
  'sessions.resume.authenticate': { status: 200, run: async (w) => resume(w, await codeOf(w, {}), fullSession) },
  'sessions.resume.retry': { status: 200, run: async (w) => resume(w, await codeOf(w, {}), { mvpd: 'Cablevision', domainName: 'adobe.com' }) },
  'sessions.resume.authorize': {
    status: 200,
    run: async (w) => {
      const code = await codeOf(w, {});
      giveProfile(w.f, w.device);
      return resume(w, code, fullSession);
    },
  },
  'sessions.resume.authorize.temporary': { status: 200, run: async (w) => resume(w, await codeOf(w, {}), { ...fullSession, mvpd: 'TempPass_TEST40' }) },
  'sessions.resume.authorize.degraded': {
    status: 200,
    run: async (w) => {
      const code = await codeOf(w, {});
      await degrade(w, 'AuthNAll');
      return resume(w, code, fullSession);
    },
  },
  'sessions.get': { status: 200, run: async (w) => w.f.call(`/api/v2/REF30/sessions/${await codeOf(w, fullSession)}`, { headers: w.device.headers() }) },
  'sessions.get.missingParameters': {
    status: 200,
    run: async (w) => w.f.call(`/api/v2/REF30/sessions/${await codeOf(w, { domainName: 'adobe.com', redirectUrl: 'https://adobe.com' })}`, { headers: w.device.headers() }),
  },

  'authenticate.redirect': {
    status: 302,
    run: async (w) => {
      const answer = await w.f.call(`/api/v2/authenticate/REF30/${await codeOf(w, fullSession)}`);
      // A redirect has no body: its Location, absolute as in the sample, is what is compared.
      const location = answer.headers.get('location') ?? '';
      if (!URL.canParse(location)) throw new Error(`Location is not absolute: ${location}`);
      return new Response(JSON.stringify({ Location: location }), { status: answer.status });
    },
  },
  profiles: {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device);
      return get(w, '/api/v2/REF30/profiles');
    },
  },
  'profiles.mvpd': {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device);
      return get(w, '/api/v2/REF30/profiles/Cablevision');
    },
    view: profilesUnder('Spectrum'),
  },
  'profiles.tempPassBasic': {
    status: 200,
    run: (w) => {
      startTrial(w.f, w.device);
      return get(w, '/api/v2/REF30/profiles/TempPass_TEST40');
    },
  },
  'profiles.tempPassExpired': {
    status: 403,
    optional: errorExtras,
    run: (w) => {
      startTrial(w.f, w.device);
      w.f.clock.advance(180_000);
      return get(w, '/api/v2/REF30/profiles/TempPass_TEST40');
    },
  },
  'profiles.tempPassPromotional': {
    status: 200,
    run: async (w) => {
      await authorize(w, 'flexibleTempPass', ['res01'], withIdentity);
      return get(w, '/api/v2/REF30/profiles/flexibleTempPass', withIdentity);
    },
  },
  'profiles.tempPassPromotionalExpired': {
    status: 403,
    optional: errorExtras,
    run: async (w) => {
      await authorize(w, 'flexibleTempPass', ['res01'], withIdentity);
      w.f.clock.advance(3600_000);
      return get(w, '/api/v2/REF30/profiles/flexibleTempPass', withIdentity);
    },
  },
  'profiles.tempPassResourcesExceeded': {
    status: 403,
    optional: errorExtras,
    run: async (w) => {
      await useUpPromotional(w);
      return get(w, '/api/v2/REF30/profiles/flexibleTempPass', withIdentity);
    },
  },
  'profiles.tempPassInvalidIdentity': { status: 400, optional: errorExtras, run: (w) => get(w, '/api/v2/REF30/profiles/flexibleTempPass') },
  'profiles.tempPassInvalidConfiguration': {
    status: 500,
    optional: errorExtras,
    rules: misconfigured('TempPass_TEST40'),
    run: (w) => get(w, '/api/v2/REF30/profiles/TempPass_TEST40'),
  },
  'profiles.tempPassPromotionalInvalidConfiguration': {
    status: 500,
    optional: errorExtras,
    rules: misconfigured('flexibleTempPass'),
    run: (w) => get(w, '/api/v2/REF30/profiles/flexibleTempPass', withIdentity),
  },
  'profiles.degraded': {
    status: 200,
    run: async (w) => {
      await degrade(w, 'AuthNAll');
      return get(w, '/api/v2/REF30/profiles/Cablevision');
    },
    view: degradedProfile,
  },
  'profiles.code': {
    status: 200,
    run: async (w) => {
      const code = await codeOf(w, fullSession);
      await loginThroughMvpd(w.f, `/api/v2/authenticate/REF30/${code}`, 'viewer1', 'pass');
      return byCode(w, code);
    },
  },
  'profiles.code.tempPassBasic': { status: 200, run: async (w) => byCode(w, await tempPassCode(w, 'TempPass_TEST40')) },
  'profiles.code.tempPassExpired': {
    status: 403,
    optional: errorExtras,
    run: async (w) => {
      const code = await tempPassCode(w, 'TempPass_TEST40');
      w.f.clock.advance(180_000);
      return byCode(w, code);
    },
  },
  'profiles.code.tempPassPromotional': {
    status: 200,
    run: async (w) => {
      const code = await tempPassCode(w, 'flexibleTempPass', withIdentity);
      await authorize(w, 'flexibleTempPass', ['res01'], withIdentity);
      return byCode(w, code, withIdentity);
    },
  },
  'profiles.code.tempPassPromotionalExpired': {
    status: 403,
    optional: errorExtras,
    // The demo's promotional trial lasts an hour: the code must outlive it.
    rules: { sessionTtlMs: 2 * 3600_000 },
    run: async (w) => {
      const code = await tempPassCode(w, 'flexibleTempPass', withIdentity);
      w.f.clock.advance(3600_000);
      return byCode(w, code, withIdentity);
    },
  },
  'profiles.code.tempPassResourcesExceeded': {
    status: 403,
    optional: errorExtras,
    run: async (w) => {
      const code = await tempPassCode(w, 'flexibleTempPass', withIdentity);
      await useUpPromotional(w);
      return byCode(w, code, withIdentity);
    },
  },
  'profiles.code.tempPassInvalidIdentity': {
    status: 400,
    optional: errorExtras,
    run: async (w) => byCode(w, await tempPassCode(w, 'flexibleTempPass', withIdentity), { 'ap-temppass-identity': 'not an identity' }),
  },
  'profiles.code.tempPassInvalidConfiguration': {
    status: 500,
    optional: errorExtras,
    rules: misconfigured('TempPass_TEST40'),
    run: async (w) => byCode(w, await tempPassCode(w, 'TempPass_TEST40')),
  },
  'profiles.code.tempPassPromotionalInvalidConfiguration': {
    status: 500,
    optional: errorExtras,
    rules: misconfigured('flexibleTempPass'),
    run: async (w) => byCode(w, await tempPassCode(w, 'flexibleTempPass', withIdentity), withIdentity),
  },
  'profiles.code.degraded': {
    status: 200,
    run: async (w) => {
      const code = await codeOf(w, fullSession);
      await degrade(w, 'AuthNAll');
      return byCode(w, code);
    },
    view: degradedProfile,
  },

  'decisions.authorize.permit': {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device);
      return authorize(w, 'Cablevision', ['REF30']);
    },
  },
  'decisions.authorize.deny': {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device);
      return authorize(w, 'Cablevision', ['PREMIUM']);
    },
  },
  ...Object.fromEntries(
    (['AuthNAll', 'AuthZAll', 'AuthZNone'] as const).flatMap((rule) => [
      [
        `decisions.authorize.degraded${rule}`,
        { status: 200, optional: errorExtras, run: async (w: World) => (await degrade(w, rule), authorize(w, 'Cablevision', ['REF30'])) },
      ],
      [
        `decisions.preauthorize.degraded${rule}`,
        { status: 200, optional: errorExtras, run: async (w: World) => (await degrade(w, rule), preauthorize(w, 'Cablevision', ['REF30'])) },
      ],
    ]),
  ),
  'decisions.authorize.tempPassPermit': { status: 200, run: (w) => authorize(w, 'TempPass_TEST40', ['REF30']) },
  'decisions.authorize.tempPassExpired': {
    status: 200,
    optional: errorExtras,
    run: async (w) => {
      await authorize(w, 'TempPass_TEST40', ['REF30']);
      w.f.clock.advance(180_000);
      return authorize(w, 'TempPass_TEST40', ['REF30']);
    },
  },
  'decisions.authorize.tempPassPromotionalPermit': { status: 200, run: (w) => authorize(w, 'flexibleTempPass', ['REF30'], withIdentity) },
  'decisions.authorize.tempPassPromotionalExpired': {
    status: 200,
    optional: errorExtras,
    run: async (w) => {
      await authorize(w, 'flexibleTempPass', ['REF30'], withIdentity);
      w.f.clock.advance(3600_000);
      return authorize(w, 'flexibleTempPass', ['REF30'], withIdentity);
    },
  },
  'decisions.authorize.tempPassDenied': { status: 200, optional: errorExtras, run: useUpPromotional },
  'decisions.authorize.tempPassInvalidIdentity': { status: 200, optional: errorExtras, run: (w) => authorize(w, 'flexibleTempPass', ['REF30']) },
  'decisions.authorize.tempPassInvalidConfiguration': {
    status: 200,
    optional: errorExtras,
    rules: misconfigured('TempPass_TEST40'),
    run: (w) => authorize(w, 'TempPass_TEST40', ['REF30']),
  },
  'decisions.authorize.tempPassPromotionalInvalidConfiguration': {
    status: 200,
    optional: errorExtras,
    rules: misconfigured('flexibleTempPass'),
    run: (w) => authorize(w, 'flexibleTempPass', ['REF30'], withIdentity),
  },
  'decisions.preauthorize': {
    status: 200,
    optional: errorExtras,
    rules: preauthorizeWorld,
    run: (w) => {
      giveProfile(w.f, w.device);
      return preauthorize(w, 'Cablevision', ['resource1 ', 'resource2', 'resource3']);
    },
  },
  'decisions.preauthorize.denyItem': {
    status: 200,
    optional: errorExtras,
    rules: preauthorizeWorld,
    run: (w) => {
      giveProfile(w.f, w.device);
      return preauthorize(w, 'Cablevision', ['resource3']);
    },
    view: (body) => (body as { decisions: unknown[] }).decisions[0],
  },

  'logout.interactive': {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device);
      return logout(w, 'Cablevision');
    },
  },
  'logout.complete': {
    status: 200,
    rules: { mvpds: defaultRules().mvpds.map((m) => (m.id === 'AdobePass_TEST' ? { ...m, hasLogoutEndpoint: false } : m)) },
    run: (w) => {
      giveProfile(w.f, w.device, 'AdobePass_TEST');
      return logout(w, 'AdobePass_TEST');
    },
    view: logoutsUnder('Dish'),
  },
  'logout.degraded': { status: 200, run: async (w) => (await degrade(w, 'AuthNAll'), logout(w, 'Cablevision')), view: logoutsUnder('ATTOTT') },
  'logout.tempPass': {
    status: 200,
    run: async (w) => (await authorize(w, 'TempPass_TEST40', ['REF30']), logout(w, 'TempPass_TEST40')),
    view: logoutsUnder('TempPass_5mins'),
  },

  // Single logout: another application signed in (a regular profile) and sent the token, so this
  // application's logout carrying the same token finds and deletes that profile.
  'logout.singleLogout.serviceToken': {
    status: 200,
    rules: { sso: { serviceTokenKeys: [serviceTokenKey.publicPem] } },
    run: (w) => singleLogout(w, { 'ad-service-token': serviceTokenKey.jws(w.f.sim.state.now()) }),
    view: logoutsUnder('Spectrum'),
  },
  'logout.singleLogout.platformIdentity': {
    status: 200,
    rules: { sso: { platformTokens: [PLATFORM_TOKEN] } },
    run: (w) => singleLogout(w, { 'adobe-subject-token': PLATFORM_TOKEN }),
    view: logoutsUnder('Comcast_SSO'),
  },
  'logout.partner': {
    status: 200,
    run: (w) => {
      giveProfile(w.f, w.device, 'Cablevision', { issuer: 'Apple', type: 'appleSSO' });
      return logout(w, 'Cablevision');
    },
  },

  'error.topLevel': { status: 400, run: (w) => get(w, '/api/v2/NOPE/configuration') },
  // The item-level sample's permit token carries an `issuedAt` the authorize page's samples do not:
  // what is compared is its deny item, the item-level error (see the closing note of issue 13).
  'error.itemLevel': {
    status: 200,
    rules: { maxResources: { authorize: 2, preauthorize: 5 } },
    run: (w) => {
      giveProfile(w.f, w.device);
      return authorize(w, 'Cablevision', ['REF30', 'PREMIUM']);
    },
    view: (body) => (body as { decisions: unknown[] }).decisions[1],
    sample: (whole) => (whole as { decisions: unknown[] }).decisions[1],
    optional: ['notBefore', 'notAfter'],
  },
  'throttle.429.body': {
    status: 429,
    text: true,
    run: async (w) => {
      // The limit of the first second, no burst: the second call is refused.
      await w.f.call('/sim/config', { method: 'POST', headers: json(), body: JSON.stringify({ throttle: { enabled: true, ratePerSecond: 1, burst: 0 } }) });
      await get(w, '/api/v2/REF30/configuration');
      return get(w, '/api/v2/REF30/configuration');
    },
    view: (body) => (body as string).replaceAll('\r\n', '\n'),
  },
};

test('every documented sample of the fixture has its simulator test, and every test its sample', (t) => {
  t.deepEqual(Object.keys(cases).sort(), Object.keys(docs).sort());
});

for (const [key, c] of Object.entries(cases)) {
  test(`${key}: ${docs[key] ?? 'no doc'}`, async (t) => {
    const f = await withSim(t, { ...unthrottled, ...c.rules });
    const device = await registerDevice(f);
    const response = await c.run({ f, device });
    t.is(response.status, c.status);
    const body: unknown = c.text ? await response.text() : await response.json();
    const actual = c.view ? c.view(body) : body;
    const sample = c.sample ? c.sample(samples[key]) : samples[key];
    if (c.text) t.is(actual, sample);
    else t.deepEqual(sampleShapeDiff(sample, actual, c.optional), []);
  });
}
