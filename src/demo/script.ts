import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { protect } from '../agent/envelope.js';
import { AppClient, Browser, PartnerClient, heading, inputValue, pageTitle, postLicenseChallenge, type Answer } from './http.js';

/** What the demo's tvOS app registers (adobe-pass.md §3.3 required keys and a few optional ones; no connection fields). */
export const DEMO_DEVICE_INFO = {
  primaryHardwareType: 'SetTopBox',
  model: 'TV 5th Gen',
  manufacturer: 'Apple',
  version: '5.0.0',
  osName: 'tvOS',
  osVendor: 'Apple',
  osVersion: '17.1',
  connectionType: 'WiFi',
} as const;

/** The demo fixtures (SPEC §10): config/example.yaml's app and the simulator's default rules. */
export const demoFixtures = {
  appKey: 'demo-app-key',
  mvpd: 'Cablevision',
  mvpdDisplayName: 'Optimum',
  permitted: 'REF30',
  denied: 'PREMIUM',
  deniedCode: 'authorization_denied_by_mvpd',
  username: 'demo-viewer',
  password: 'pass',
  /** config/example.yaml's catalogue: REF30 covers `ref30-*`, PREMIUM `premium-*`; the simulator's DEMO site. */
  drmSystem: 'widevine',
  contentId: 'ref30-movie',
  foreignContentId: 'premium-film',
  drmSiteId: 'DEMO',
} as const;

export interface DemoStep {
  n: number;
  /** Who acts: the streaming app (TV), the viewer's phone (second screen), the operator's CLI or a partner platform's adapter. */
  actor: 'app' | 'viewer' | 'operator' | 'partner';
  title: string;
  /** The HTTP exchange(s) of the step, e.g. `POST /v1/devices → 201`. */
  request: string;
  /** The key fields of the answer, in display order. */
  details: Array<[string, string]>;
  ok: boolean;
  /** Why the step did not behave as expected. */
  error?: string;
  ms: number;
}

export interface DemoTarget {
  passgateUrl: string;
  simUrl: string;
  /** The partner agent's demo credentials (config `agent`); without them the agent steps are left out. */
  agent?: { partnerSecret: string; keyId: string; key: Buffer; principal: string; outsider: string; label: string };
}

/** A step that did not behave as expected. */
class Unexpected extends Error {}

const expect = (condition: unknown, message: string): void => {
  if (!condition) throw new Unexpected(message);
};

const expectStatus = (answer: Answer, status: number, what: string): void => {
  if (answer.status !== status) throw new Unexpected(`${what} answered ${answer.status}, expected ${status}: ${summary(answer)}`);
};

function summary(answer: Answer): string {
  const problem = answer.json as { code?: string; detail?: string } | undefined;
  if (problem && (problem.code || problem.detail)) return [problem.code, problem.detail].filter(Boolean).join(': ');
  return answer.text.replace(/\s+/g, ' ').slice(0, 160);
}

const obj = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
const str = (value: unknown): string => (typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value));

/** A bearer-grade value shown only by its start and length. */
export const shorten = (token: string): string => (token.length <= 12 ? '…' : `${token.slice(0, 12)}… (${token.length} chars)`);

/**
 * A Widevine challenge as the simulator's license service reads it: protobuf-looking bytes with
 * the ASCII marker `content_id=<cid>` standing in for the PSSH a real CDM would send.
 */
const widevineChallenge = (contentId: string) => ({
  body: Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), Buffer.from(`passgate demo widevine challenge content_id=${contentId} `)]),
  type: 'application/octet-stream',
});

/** The fields of a license token (base64 JSON, drm.md §1.2); undefined when it is not one. */
function decodeLicenseToken(token: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A gate refusal (403 problem+json) with the code it must carry. */
function expectRefusal(answer: Answer, code: string, what: string): Record<string, unknown> {
  expectStatus(answer, 403, what);
  const problem = obj(answer.json);
  expect(problem.code === code, `${what} refused with ${JSON.stringify(problem.code)}, expected ${code}`);
  return problem;
}

/** Path and query of a URL, for the step lines. */
const pathOf = (url: string): string => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

interface Step {
  actor: DemoStep['actor'];
  title: string;
  run(): Promise<{ request: string; details: Array<[string, string]> }>;
}

/**
 * The scripted streaming app and viewer, over HTTP only. Calls `onStep` as each step ends; stops
 * at the first step that does not behave as expected (its `ok` is false).
 */
export async function playDemo(target: DemoTarget, onStep: (step: DemoStep) => void = () => {}): Promise<DemoStep[]> {
  const f = demoFixtures;
  const app = new AppClient(target.passgateUrl, f.appKey);
  const browser = new Browser();
  const deviceId = `demo-tv-${Math.random().toString(36).slice(2, 10)}`;
  let code = '';
  let activationUrlComplete = '';
  let next = '';
  /** The license token and where it goes: kept for the player step, never printed. */
  let license = { token: '', url: '' };
  const drmRequest = (contentId: string) => `{resource: '${f.permitted}', drm: {system: '${f.drmSystem}', contentId: '${contentId}'}}`;

  const steps: Step[] = [
    {
      actor: 'app',
      title: 'Register the device',
      async run() {
        const answer = await app.call('POST', '/v1/devices', { deviceId, deviceInfo: DEMO_DEVICE_INFO });
        expect(answer.status === 201, `POST /v1/devices answered ${answer.status}: ${summary(answer)}`);
        const body = obj(answer.json);
        // SPEC §2: the first registration returns the binding's secret once; the app keeps it to renew.
        const deviceSecret = str(body.deviceSecret);
        expect(deviceSecret !== '', 'no deviceSecret in the answer of a first registration');
        const device = obj(body.device);
        // What the app does when its token runs out: renew the same binding with the secret.
        const renewal = await app.call('POST', '/v1/devices', { deviceId, deviceInfo: DEMO_DEVICE_INFO, deviceSecret });
        expect(renewal.status === 200, `POST /v1/devices with the deviceSecret answered ${renewal.status}: ${summary(renewal)}`);
        const renewed = obj(renewal.json);
        expect(str(obj(renewed.device).binding) === str(device.binding), 'the renewal did not keep the binding');
        const token = str(renewed.deviceToken);
        expect(token !== '' && renewed.tokenType === 'Bearer', 'no bearer device token in the answer');
        app.useDeviceToken(token);
        return {
          request: `POST /v1/devices (X-App-Key ${f.appKey}) → ${answer.status}; again with {deviceSecret} → ${renewal.status}`,
          details: [
            ['deviceId', deviceId],
            ['app', str(device.app)],
            ['binding', str(device.binding)],
            ['fingerprint', str(device.fingerprint)],
            ['device secret', 'shown once (kept by the app in secure storage, not shown); renews this binding'],
            ['device token', `Bearer …, expires ${str(renewed.expiresAt)} (kept by the app, not shown)`],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: 'List the TV providers',
      async run() {
        const answer = await app.call('GET', '/v1/mvpds');
        expectStatus(answer, 200, 'GET /v1/mvpds');
        const mvpds = (obj(answer.json).mvpds ?? []) as Array<{ id: string; displayName?: string }>;
        const mvpd = mvpds.find((m) => m.id === f.mvpd);
        expect(mvpd, `${f.mvpd} is not in the MVPD list`);
        return {
          request: `GET /v1/mvpds → ${answer.status}`,
          details: [['mvpds', mvpds.map((m) => `${m.id} (${m.displayName ?? m.id})`).join(', ')]],
        };
      },
    },
    {
      actor: 'app',
      title: `Start sign-in with ${f.mvpd}`,
      async run() {
        const answer = await app.call('POST', '/v1/authentication', { mvpd: f.mvpd });
        expectStatus(answer, 201, 'POST /v1/authentication');
        const body = obj(answer.json);
        code = str(body.code);
        activationUrlComplete = str(body.activationUrlComplete);
        expect(/^[A-Z0-9]{4,16}$/.test(code), `unexpected code ${JSON.stringify(code)}`);
        expect(activationUrlComplete.startsWith(`${target.passgateUrl}/activate`), `unexpected activationUrlComplete ${activationUrlComplete}`);
        return {
          request: `POST /v1/authentication {mvpd: '${f.mvpd}'} → ${answer.status}`,
          details: [
            ['code', `${code}   (the TV shows it, with a QR code of the link below)`],
            ['activationUrlComplete', activationUrlComplete],
            ['expiresAt', str(body.expiresAt)],
            ['pollIntervalMs', str(body.pollIntervalMs)],
          ],
        };
      },
    },
    {
      actor: 'viewer',
      title: 'Open the activation link on the phone',
      async run() {
        const answer = await browser.get(activationUrlComplete);
        expectStatus(answer, 200, 'GET /activate');
        const prefilled = inputValue(answer.text, 'code');
        expect(prefilled === code, `the code field holds ${JSON.stringify(prefilled)}, expected ${code}`);
        expect(inputValue(answer.text, 'csrf'), 'the form has no CSRF token');
        expect(browser.cookieNames(activationUrlComplete).length > 0, 'no CSRF cookie was set');
        return {
          request: `GET ${pathOf(activationUrlComplete)} → ${answer.status}`,
          details: [
            ['page', str(pageTitle(answer.text))],
            ['code field', `${prefilled} (prefilled, not submitted)`],
            ['csrf', `hidden form token + cookie ${browser.cookieNames(activationUrlComplete).join(', ')}`],
          ],
        };
      },
    },
    {
      actor: 'viewer',
      title: 'Confirm the code',
      async run() {
        const form = await browser.get(activationUrlComplete);
        const csrf = inputValue(form.text, 'csrf') ?? '';
        const url = `${target.passgateUrl}/activate`;
        const answer = await browser.postForm(url, { csrf, code });
        expectStatus(answer, 303, 'POST /activate');
        next = answer.headers.get('location') ?? '';
        expect(next.startsWith(`${target.simUrl}/`), `POST /activate redirected to ${JSON.stringify(next)}, not to the upstream`);
        return { request: `POST /activate (csrf, code=${code}) → 303`, details: [['location', next]] };
      },
    },
    {
      actor: 'viewer',
      title: `Reach the ${f.mvpdDisplayName} sign-in page`,
      async run() {
        const authenticateUrl = next;
        const authenticate = await browser.get(authenticateUrl);
        expectStatus(authenticate, 302, `GET ${pathOf(authenticateUrl)}`);
        const login = authenticate.headers.get('location') ?? '';
        expect(/\/sim\/mvpd\/[^/]+\/login/.test(login), `the upstream redirected to ${JSON.stringify(login)}, not to an MVPD login page`);
        const page = await browser.get(login);
        expectStatus(page, 200, 'the MVPD login page');
        expect(inputValue(page.text, 'session'), 'the MVPD login form has no session field');
        next = login;
        return {
          request: `GET ${new URL(authenticateUrl).pathname} (simulator) → 302; GET ${new URL(login).pathname} → 200`,
          details: [['page', str(heading(page.text) ?? pageTitle(page.text))]],
        };
      },
    },
    {
      actor: 'viewer',
      title: `Sign in at ${f.mvpdDisplayName}`,
      async run() {
        const page = await browser.get(next);
        const session = inputValue(page.text, 'session') ?? '';
        const action = new URL(next);
        action.search = '';
        const answer = await browser.postForm(action.toString(), { session, username: f.username, password: f.password });
        expectStatus(answer, 302, 'the MVPD login form');
        const done = answer.headers.get('location') ?? '';
        expect(done === `${target.passgateUrl}/activate/done`, `the MVPD sent the browser to ${JSON.stringify(done)}, not to passgate's /activate/done`);
        const landing = await browser.get(done);
        expectStatus(landing, 200, 'GET /activate/done');
        const text = landing.text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
        expect(/signed in/i.test(text), '/activate/done does not say the viewer is signed in');
        return {
          request: `POST ${action.pathname} (username=${f.username}, password=••••) → 302; GET /activate/done → 200`,
          details: [['page', str(heading(landing.text))]],
        };
      },
    },
    {
      actor: 'app',
      title: 'Long-poll the sign-in',
      async run() {
        const answer = await app.call('GET', `/v1/authentication/${code}?wait=10`);
        expectStatus(answer, 200, 'GET /v1/authentication/{code}');
        const body = obj(answer.json);
        expect(body.status === 'authenticated', `status is ${str(body.status)}, expected authenticated`);
        const profile = obj(body.profile);
        return {
          request: `GET /v1/authentication/${code}?wait=10 → ${answer.status}`,
          details: [
            ['status', str(body.status)],
            ['mvpd', str(profile.mvpd)],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: 'Read the profile',
      async run() {
        const answer = await app.call('GET', '/v1/profile');
        expectStatus(answer, 200, 'GET /v1/profile');
        const profile = obj(obj(answer.json).profile);
        expect(profile.mvpd === f.mvpd, `profile is ${JSON.stringify(obj(answer.json).profile)}, expected one of ${f.mvpd}`);
        const userId = str(obj(obj(profile.attributes).userID).value);
        expect(userId === f.username, `profile userID is ${JSON.stringify(userId)}, expected ${f.username}`);
        return {
          request: `GET /v1/profile → ${answer.status}`,
          details: [
            ['mvpd', str(profile.mvpd)],
            ['userID', userId],
            ['valid', `${str(profile.notBefore)} … ${str(profile.notAfter)}`],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: 'Preauthorize the catalogue',
      async run() {
        const answer = await app.call('POST', '/v1/preauthorize', { resources: [f.permitted, f.denied] });
        expectStatus(answer, 200, 'POST /v1/preauthorize');
        const decisions = (obj(answer.json).decisions ?? []) as Array<{ resource: string; authorized: boolean; error?: { code?: string; message?: string } }>;
        const of = (resource: string) => decisions.find((d) => d.resource === resource);
        expect(of(f.permitted)?.authorized === true, `${f.permitted} is not authorized: ${JSON.stringify(of(f.permitted))}`);
        expect(of(f.denied)?.authorized === false, `${f.denied} is not denied: ${JSON.stringify(of(f.denied))}`);
        return {
          request: `POST /v1/preauthorize {resources: ['${f.permitted}', '${f.denied}']} → ${answer.status}`,
          details: decisions.map((d): [string, string] => [
            d.resource,
            d.authorized ? 'authorized' : `denied (${[d.error?.code, d.error?.message].filter(Boolean).join(': ')})`,
          ]),
        };
      },
    },
    {
      actor: 'app',
      title: `Play ${f.permitted}`,
      async run() {
        const answer = await app.call('POST', '/v1/authorize', { resource: f.permitted });
        expectStatus(answer, 200, 'POST /v1/authorize');
        const body = obj(answer.json);
        expect(body.authorized === true, 'authorized is not true');
        const mediaToken = str(body.mediaToken);
        expect(mediaToken !== '', 'no media token');
        return {
          request: `POST /v1/authorize {resource: '${f.permitted}'} → ${answer.status}`,
          details: [
            ['decision', 'Permit'],
            ['mediaToken', shorten(mediaToken)],
            ['notAfter', str(body.notAfter)],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: `Get a Widevine license token for ${f.contentId}`,
      async run() {
        const answer = await app.call('POST', '/v1/authorize', { resource: f.permitted, drm: { system: f.drmSystem, contentId: f.contentId } });
        expectStatus(answer, 200, 'POST /v1/authorize with drm');
        const body = obj(answer.json);
        const given = obj(body.license);
        license = { token: str(given.token), url: str(given.licenseUrl) };
        expect(body.authorized === true, 'authorized is not true');
        expect(license.token !== '', 'no license token in the answer');
        expect(license.url.startsWith(`${target.simUrl}/`), `the license URL ${JSON.stringify(license.url)} is not the simulator's license service`);
        expect(given.header === 'pallycon-customdata-v2', `the token goes in ${JSON.stringify(given.header)}, expected pallycon-customdata-v2`);
        const fields = decodeLicenseToken(license.token);
        expect(fields, 'the license token is not base64 JSON');
        const t = fields ?? {};
        expect(t.drm_type === 'Widevine' && t.site_id === f.drmSiteId && t.cid === f.contentId, `the token says drm_type ${str(t.drm_type)}, site_id ${str(t.site_id)}, cid ${str(t.cid)}`);
        expect(/^[0-9a-f]{32}$/.test(str(t.user_id)), `the token's user_id ${JSON.stringify(t.user_id)} is not a 32-hex device id`);
        expect(str(t.policy) !== '' && str(t.hash) !== '', 'the token has no encrypted policy or no hash');
        return {
          request: `POST /v1/authorize ${drmRequest(f.contentId)} → ${answer.status}`,
          details: [
            ['decision', 'Permit, with a license token'],
            ['licenseUrl', license.url],
            ['header', str(given.header)],
            ['expiresAt', str(given.expiresAt)],
            ['token', `base64 JSON, ${license.token.length} chars (kept by the app, not shown); its fields:`],
            ['token.drm_type', str(t.drm_type)],
            ['token.site_id', str(t.site_id)],
            ['token.user_id', `${str(t.user_id)} (the device, as the license service sees it)`],
            ['token.cid', str(t.cid)],
            ['token.timestamp', str(t.timestamp)],
            ['token.policy', `AES-256 encrypted with the site key, ${str(t.policy).length} chars (not shown)`],
            ['token.hash', 'SHA-256 over the fields and the access key (not shown)'],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: 'Fetch the Widevine license as the player does',
      async run() {
        const answer = await postLicenseChallenge(license.url, license.token, widevineChallenge(f.contentId));
        const error = obj(answer.json);
        expect(answer.status === 200 && error.errorCode === undefined, `the license service answered ${answer.status} ${answer.text.slice(0, 160)} ${answer.headers.get('x-sim-reason') ?? ''}`);
        const type = answer.headers.get('content-type')?.split(';')[0] ?? '';
        expect(type === 'application/octet-stream', `a Widevine license arrived as ${JSON.stringify(type)}, expected application/octet-stream`);
        return {
          request: `POST ${pathOf(license.url)} (simulator's license service; pallycon-customdata-v2: the token; a Widevine challenge for ${f.contentId}) → ${answer.status}`,
          details: [
            ['license', `received, ${type}, ${answer.bytes} bytes`],
            ['says', answer.text.split('\n')[0] ?? ''],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: `Ask for a license outside ${f.permitted}`,
      async run() {
        const answer = await app.call('POST', '/v1/license-token', { resource: f.permitted, drm: { system: f.drmSystem, contentId: f.foreignContentId } });
        const problem = expectRefusal(answer, 'content_not_in_resource', 'POST /v1/license-token');
        return {
          request: `POST /v1/license-token ${drmRequest(f.foreignContentId)} → ${answer.status}`,
          details: [
            ['decision', 'refused: no license token'],
            ['code', str(problem.code)],
            ['title', str(problem.title)],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: `Play ${f.denied}`,
      async run() {
        const answer = await app.call('POST', '/v1/authorize', { resource: f.denied });
        expectStatus(answer, 403, 'POST /v1/authorize');
        const problem = obj(answer.json);
        const upstream = obj(problem.upstream);
        expect(upstream.code === f.deniedCode, `upstream code is ${JSON.stringify(upstream.code)}, expected ${f.deniedCode}`);
        return {
          request: `POST /v1/authorize {resource: '${f.denied}'} → ${answer.status} ${answer.headers.get('content-type')?.split(';')[0] ?? ''}`,
          details: [
            ['decision', 'Deny'],
            ['code', str(problem.code)],
            ['upstream.code', str(upstream.code)],
            ['upstream.message', str(upstream.message)],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: 'Sign out',
      async run() {
        const answer = await app.call('POST', '/v1/logout', {});
        expectStatus(answer, 200, 'POST /v1/logout');
        const body = obj(answer.json);
        return {
          request: `POST /v1/logout → ${answer.status}`,
          details: [['actionName', str(body.actionName)], ...(body.url ? [['url', str(body.url)] as [string, string]] : [])],
        };
      },
    },
    {
      actor: 'app',
      title: 'Ask for a license after signing out',
      async run() {
        const answer = await app.call('POST', '/v1/license-token', { resource: f.permitted, drm: { system: f.drmSystem, contentId: f.contentId } });
        const problem = expectRefusal(answer, 'logged_out', 'POST /v1/license-token');
        return {
          request: `POST /v1/license-token ${drmRequest(f.contentId)} → ${answer.status}`,
          details: [
            ['decision', 'refused: the Permit ended with the sign-out'],
            ['code', str(problem.code)],
            ['title', str(problem.title)],
          ],
        };
      },
    },
    {
      actor: 'app',
      title: 'Read the profile again',
      async run() {
        const answer = await app.call('GET', '/v1/profile');
        expectStatus(answer, 200, 'GET /v1/profile');
        const body = obj(answer.json);
        expect(body.profile === null, `profile is ${JSON.stringify(body.profile)}, expected null`);
        return { request: `GET /v1/profile → ${answer.status}`, details: [['profile', 'null (signed out)']] };
      },
    },
  ];

  if (target.agent) steps.push(...agentSteps(target, target.agent));

  const done: DemoStep[] = [];
  for (const [index, step] of steps.entries()) {
    const started = performance.now();
    let result: DemoStep;
    try {
      const { request, details } = await step.run();
      for (const note of app.drainThrottleNotes()) details.push(['throttle', note]);
      result = { n: index + 1, actor: step.actor, title: step.title, request, details, ok: true, ms: Math.round(performance.now() - started) };
    } catch (error) {
      const notes = app.drainThrottleNotes();
      const message = (error instanceof Unexpected ? error.message : `request failed: ${describe(error)}`) + (notes.length > 0 ? ` (after: ${notes.join('; ')})` : '');
      result = { n: index + 1, actor: step.actor, title: step.title, request: '', details: [], ok: false, error: message, ms: Math.round(performance.now() - started) };
    }
    done.push(result);
    onStep(result);
    if (!result.ok) break;
  }
  return done;
}


/** fetch's "fetch failed" with its cause (ECONNREFUSED, a timeout, …). */
function describe(error: unknown): string {
  const err = error as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause?.code ?? err.cause?.message;
  return `${err.message ?? String(error)}${cause ? ` (${cause})` : ''}`;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The envelope of `plain` made the way `passgate protect` makes it, in memory. */
async function protectInMemory(plain: Buffer, opts: { keyId: string; key: Buffer; fileId: string; label: string }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await protect(Readable.from([plain]), sink, opts);
  return Buffer.concat(chunks);
}

interface AdapterRecord {
  kind: string;
  jobId: string;
  result?: string;
  sha256?: string;
  size?: number;
}

/** What the simulator's adapter received for `jobId`, once the job is through (the result, and the plaintext on success). */
async function adapterRecords(simUrl: string, jobId: string): Promise<AdapterRecord[]> {
  const until = Date.now() + 20_000;
  for (;;) {
    const all = ((await (await fetch(`${simUrl}/sim/adapter/received`)).json()) as AdapterRecord[]).filter((r) => r.jobId === jobId);
    const result = all.find((r) => r.kind === 'result');
    if (result && (result.result !== 'success' || all.some((r) => r.kind === 'decrypted'))) return all;
    if (Date.now() > until) throw new Unexpected(`the adapter did not receive job ${jobId} within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The partner agent (SPEC §5): protect a document, then the partner's adapter authenticates and decrypts, for an entitled user and for an outsider. */
function agentSteps(target: DemoTarget, agent: NonNullable<DemoTarget['agent']>): Step[] {
  const partner = new PartnerClient(target.passgateUrl, agent.partnerSecret);
  const fileId = `demo-report-${Math.random().toString(36).slice(2, 8)}`;
  const plain = randomBytes(256 * 1024);
  let envelope: Buffer = Buffer.alloc(0);
  // Session keys the partner platform makes up per user: shown by length only.
  const [insider, outsider] = [`dsid-${randomBytes(12).toString('base64url')}`, `dsid-${randomBytes(12).toString('base64url')}`];
  const decrypt = async (dsid: string) => {
    const answer = await partner.decrypt(dsid, fileId, envelope);
    expectStatus(answer, 202, 'POST /agent/v1/drm/decrypt');
    const jobId = str(obj(answer.json).jobId);
    expect(/^[0-9a-f-]{36}$/.test(jobId), `decrypt answered no job id: ${summary(answer)}`);
    return { answer, jobId, records: await adapterRecords(target.simUrl, jobId) };
  };
  return [
    {
      actor: 'operator',
      title: 'Protect a document for the partner agent',
      async run() {
        envelope = await protectInMemory(plain, { keyId: agent.keyId, key: agent.key, fileId, label: agent.label });
        return {
          request: `passgate protect --file-id ${fileId} --label ${agent.label} (key ${agent.keyId})`,
          details: [
            ['plaintext', `${plain.length} bytes, sha256 ${sha256(plain).slice(0, 16)}…`],
            ['envelope', `${envelope.length} bytes, starts ${JSON.stringify(envelope.subarray(0, 5).toString('latin1'))}`],
          ],
        };
      },
    },
    {
      actor: 'partner',
      title: `Authenticate ${agent.principal} for the document`,
      async run() {
        const answer = await partner.authenticate(insider, { fileId, userPrincipal: agent.principal });
        expectStatus(answer, 200, 'POST /agent/v1/drm/authenticate');
        const body = obj(answer.json);
        expect(body.result === 'allow', `authenticate answered ${JSON.stringify(body)}`);
        return {
          request: `POST /agent/v1/drm/authenticate {fileId, userPrincipal: '${agent.principal}'} (Kep-AgentSession: ${insider.length} chars) → ${answer.status}`,
          details: [
            ['result', str(body.result)],
            ['fileType', `${str(body.fileType)} (not registered: decrypt judges the bytes)`],
          ],
        };
      },
    },
    {
      actor: 'partner',
      title: 'Decrypt the document',
      async run() {
        const { answer, jobId, records } = await decrypt(insider);
        const result = records.find((r) => r.kind === 'result');
        const decrypted = records.find((r) => r.kind === 'decrypted');
        expect(result?.result === 'success', `the job's result is ${JSON.stringify(result?.result)}, expected success`);
        expect(decrypted?.sha256 === sha256(plain) && decrypted.size === plain.length, 'the plaintext the adapter received is not the original');
        return {
          request: `POST /agent/v1/drm/decrypt (multipart fileId + file, ${envelope.length} bytes) → ${answer.status}; then passgate → POST /adapter/v1/drm/uploadResult, /uploadDecrypted`,
          details: [
            ['jobId', jobId],
            ['uploadResult', str(result?.result)],
            ['uploadDecrypted', `${decrypted?.size} bytes, sha256 ${decrypted?.sha256?.slice(0, 16)}… = the original's`],
          ],
        };
      },
    },
    {
      actor: 'partner',
      title: `Decrypt as ${agent.outsider}, who lacks the label`,
      async run() {
        const auth = await partner.authenticate(outsider, { fileId, userPrincipal: agent.outsider });
        expectStatus(auth, 200, 'POST /agent/v1/drm/authenticate');
        const { answer, records } = await decrypt(outsider);
        const result = records.find((r) => r.kind === 'result');
        expect(result?.result === 'denied', `the job's result is ${JSON.stringify(result?.result)}, expected denied`);
        expect(!records.some((r) => r.kind === 'decrypted'), 'the adapter received a plaintext for a user without the label');
        return {
          request: `POST /agent/v1/drm/authenticate → ${auth.status}; POST /agent/v1/drm/decrypt → ${answer.status}; then passgate → POST /adapter/v1/drm/uploadResult`,
          details: [
            ['uploadResult', str(result?.result)],
            ['uploadDecrypted', 'none (no plaintext leaves passgate)'],
          ],
        };
      },
    },
  ];
}
