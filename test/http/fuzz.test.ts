import test from 'ava';
import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { brotliCompressSync, brotliDecompressSync, deflateSync, gzipSync, unzipSync } from 'node:zlib';
import { unthrottled } from '../helpers/sim-profile.js';
import { withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';
import { getJson, registerDevice, signInAtSim, startAuthentication, type Device } from '../signin/_support.js';

/*
 * Property-based fuzzing of every operation /openapi.json documents, against a real passgate and
 * simulator (SPEC §2, §8): whatever the body, query, headers or path parameters, passgate never
 * answers 5xx (except a documented 503 whose code says a dependency is down), and every answer
 * from 400 up is application/problem+json (the /activate pages answer HTML).
 *
 * PASSGATE_FUZZ_RUNS: requests in total, spread over the operations (CI default below);
 * PASSGATE_FUZZ_SEED: the seed (fixed by default, so a CI failure replays).
 */

const TOTAL_RUNS = Number(process.env.PASSGATE_FUZZ_RUNS ?? 1_000);
const SEED = Number(process.env.PASSGATE_FUZZ_SEED ?? 90_909);
const ADMIN_KEY = 'fuzz-admin-key-0123456789abcdef-0123456789';
const REQUEST_TIMEOUT_MS = 1_000;
/** A dependency being down is a documented 503; anything else from 500 up is a bug. */
const documented503 = new Set(['store_unavailable', 'upstream_unavailable', 'license_service_unavailable', 'not_ready']);

type Json = Record<string, unknown>;
interface Operation {
  method: string;
  path: string;
  op: Json;
  /** The path names its own server: the ops listener (/metrics, the admin API). */
  ops: boolean;
}
interface Doc {
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json> };
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Buffer;
  /** Send the body in two chunks (Transfer-Encoding: chunked) instead of with a Content-Length. */
  chunked: boolean;
}

interface Answer {
  status: number;
  type: string;
  body: string;
}

/** One request over node:http: the path goes out verbatim (dot segments, raw bytes), the headers as given. */
function send(base: string, req: FuzzRequest): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let outgoing: ReturnType<typeof httpRequest>;
    try {
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of req.headers) {
        const existing = headers[name];
        headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
      }
      outgoing = httpRequest({ host: hostname, port: Number(port), method: req.method, path: req.path, headers, agent: false });
    } catch (error) {
      // The client itself refuses (an invalid character): nothing reached passgate.
      reject(Object.assign(error as Error, { unsendable: true }));
      return;
    }
    // A bound that fails the run when a request hangs (the server's request deadline is 1 s).
    const bound = setTimeout(() => {
      outgoing.destroy();
      reject(new Error(`no answer within 15 s: ${req.method} ${req.path}`));
    }, 15_000);
    outgoing.on('response', (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (type.startsWith('text/event-stream')) {
        // A live SSE stream: its status and type are the answer.
        clearTimeout(bound);
        res.destroy();
        resolve({ status: res.statusCode ?? 0, type, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(bound);
        resolve({ status: res.statusCode ?? 0, type, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (error) => {
        clearTimeout(bound);
        reject(error);
      });
    });
    outgoing.on('error', (error) => {
      clearTimeout(bound);
      reject(error);
    });
    if (req.body && req.chunked) {
      const half = Math.floor(req.body.length / 2);
      outgoing.write(req.body.subarray(0, half));
      outgoing.end(req.body.subarray(half));
    } else {
      outgoing.end(req.body);
    }
  });
}

/** What the property says about one answer: undefined when it holds, else why not. */
function violation(req: FuzzRequest, answer: Answer): string | undefined {
  const htmlAllowed = req.path.toLowerCase().startsWith('/activate');
  if (answer.status >= 500) {
    const code = problemCode(answer);
    if (answer.status === 503 && code && documented503.has(code)) return undefined;
    return `${answer.status} ${answer.body.slice(0, 300)}`;
  }
  if (answer.status === 304 || (answer.status === 303 && htmlAllowed)) return undefined;
  if (answer.status < 300) return undefined;
  if (htmlAllowed && answer.type.startsWith('text/html')) return undefined;
  if (!answer.type.startsWith('application/problem+json')) return `${answer.status} answered as ${answer.type || 'no type'}: ${answer.body.slice(0, 200)}`;
  const problem = parse(answer.body);
  if (!problem || problem.status !== answer.status || typeof problem.code !== 'string' || typeof problem.title !== 'string') {
    return `${answer.status} problem body does not match: ${answer.body.slice(0, 200)}`;
  }
  return undefined;
}

const parse = (text: string): Json | undefined => {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
};
const problemCode = (answer: Answer) => (answer.type.startsWith('application/problem+json') ? (parse(answer.body)?.code as string | undefined) : undefined);

/** A failing request, readable: headers shortened, the body decoded when it was sent compressed. */
function describe(req: FuzzRequest): string {
  const headers = req.headers.map(([name, value]) => `${name}: ${value.length > 60 ? `${value.slice(0, 57)}…` : value}`);
  const coding = req.headers.find(([name]) => name === 'content-encoding')?.[1].toLowerCase();
  let body = req.body;
  try {
    if (body && coding === 'br') body = brotliDecompressSync(body);
    else if (body && (coding === 'gzip' || coding === 'deflate')) body = unzipSync(body);
  } catch {
    // Sent as is (not really in that coding).
  }
  return `${req.method} ${req.path.slice(0, 300)}${req.chunked ? ' (chunked)' : ''}\n  ${headers.join('\n  ')}\n  body: ${body ? JSON.stringify(body.toString('utf8').slice(0, 400)) : '(none)'}`;
}

// ---------------------------------------------------------------- generators

/** Strings an attacker or a broken client sends where an id or a name goes. */
const hostileString = fc.oneof(
  fc.constantFrom('', ' ', '..', '.', '%2e%2e', '%2F', '%00', '%ZZ', '%C3%28', '%E2%98%83', '\u00ff\u00fe', 'null', 'undefined', '__proto__', 'constructor', '-1', '1e309', 'NaN'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer({ min: 1, max: 5_000 }).map((n) => 'a'.repeat(n)),
);

/** Values from the domain for the property names the schemas use, so requests get past validation. */
function domainValues(name: string): string[] {
  switch (name) {
    case 'resource':
      return ['REF30', 'PREMIUM', 'unknown-resource', '<rss version="2.0"><channel><title>REF30</title></channel></rss>'];
    case 'contentId':
      return ['ref30-1', 'ref30trailer', 'premium-1', 'nope'];
    case 'mvpd':
      return ['Cablevision', 'AdobePass_TEST', 'TempPass_TEST40', 'Unknown_MVPD'];
    case 'system':
      return ['widevine', 'playready', 'fairplay'];
    case 'app':
      return ['demo', 'roku', 'other'];
    case 'userId':
      return ['0123456789abcdef0123456789abcdef'];
    default:
      return [];
  }
}

/** A value for a JSON schema: mostly valid-ish (enums, domain values, right types), sometimes off. */
function fromSchema(schema: Json | undefined, doc: Doc, name = '', depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 6) return fc.jsonValue({ maxDepth: 2 });
  if (typeof schema.$ref === 'string') return fromSchema(doc.components.schemas[schema.$ref.split('/').pop() ?? ''], doc, name, depth + 1);
  if (Array.isArray(schema.anyOf)) return fc.oneof(...(schema.anyOf as Json[]).map((s) => fromSchema(s, doc, name, depth + 1)));
  if (Array.isArray(schema.enum)) return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...(schema.enum as unknown[])) }, { weight: 1, arbitrary: hostileString });
  switch (schema.type) {
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, Json>;
      const required = new Set((schema.required ?? []) as string[]);
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, value] of Object.entries(properties)) if (!('not' in value)) model[key] = fromSchema(value, doc, key, depth + 1);
      const requiredKeys = Object.keys(model).filter((key) => required.has(key));
      return fc.record(model, { requiredKeys });
    }
    case 'array':
      return fc.array(fromSchema(schema.items as Json, doc, name, depth + 1), { maxLength: 8 });
    case 'integer':
      return fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer());
    case 'number':
      return fc.oneof(fc.double({ min: 0, max: 1_000, noNaN: true }), fc.double());
    case 'boolean':
      return fc.boolean();
    case 'string': {
      const known = domainValues(name);
      const plain = fc.string({ minLength: 1, maxLength: 24 });
      return fc.oneof({ weight: known.length > 0 ? 6 : 0, arbitrary: known.length > 0 ? fc.constantFrom(...known) : plain }, { weight: 3, arbitrary: plain }, { weight: 1, arbitrary: hostileString });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Some JSON of the wrong shape: another type where an object goes, or one field of the wrong type. */
const wrongJson = (valid: fc.Arbitrary<unknown>) =>
  fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.tuple(valid, fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })).map(([value, key, replacement]) =>
      value && typeof value === 'object' && !Array.isArray(value) ? { ...(value as Json), [Object.keys(value as Json)[0] ?? key]: replacement } : value,
    ),
    fc.constant(JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}') as unknown),
  );

/** Bytes that are not what they claim: broken JSON, bad UTF-8, huge, deeply nested, empty. */
const garbageBytes = fc.oneof(
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(
    Buffer.concat([Buffer.from('{"deviceId":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('"}')]),
    Buffer.from('{"resource":'),
    Buffer.from(`{"x":"${'a'.repeat(70_000)}"}`),
    Buffer.from('['.repeat(5_000) + ']'.repeat(5_000)),
    Buffer.from(''),
    Buffer.from('\ufeff{}'),
    Buffer.from('{"a":1}{"b":2}'),
  ),
);

const formOf = (fields: fc.Arbitrary<Record<string, unknown>>) => fields.map((f) => Buffer.from(new URLSearchParams(Object.entries(f).map(([k, v]): [string, string] => [k, String(v)])).toString()));

type Coded = { body?: Buffer; headers: [string, string][] };

/** Content-Encoding: mostly none; correct gzip/deflate/br; a coding the bytes are not in; unknown codings. */
const encoded = (body: Buffer | undefined): fc.Arbitrary<Coded> =>
  fc.oneof(
    { weight: 10, arbitrary: fc.constant<Coded>({ ...(body ? { body } : {}), headers: [] }) },
    {
      weight: 3,
      arbitrary: fc.constantFrom<[string, (b: Buffer) => Buffer]>(['gzip', gzipSync], ['deflate', deflateSync], ['br', brotliCompressSync], ['GZip', gzipSync]).map(([coding, encode]) => ({
        body: encode(body ?? Buffer.alloc(0)),
        headers: [['content-encoding', coding]] as [string, string][],
      })),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom('gzip', 'deflate', 'br', 'foo', 'gzip, br', 'compress', 'identity', 'x-gzip').map((coding) => ({
        ...(body ? { body } : {}),
        headers: [['content-encoding', coding]] as [string, string][],
      })),
    },
    { weight: 1, arbitrary: fc.constant({ body: gzipSync(Buffer.alloc(3_000_000, 0x20)), headers: [['content-encoding', 'gzip']] as [string, string][] }) },
  );

const jsonTypes = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'application/json; charset=bogus',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/merge-patch+json',
      'application/octet-stream',
      'text/xml',
      '',
    ),
  },
);

interface Credentials {
  device: Device;
  other: Device;
  appKeys: string[];
  code: string;
}

/** Authorization / X-App-Key / other headers: the real ones, stale or forged ones, and noise. */
function headerArb(creds: Credentials): fc.Arbitrary<[string, string][]> {
  const tampered = `${creds.device.token.slice(0, -2)}${creds.device.token.endsWith('A') ? 'B' : 'A'}A`;
  const authorization = fc.oneof(
    { weight: 6, arbitrary: fc.constant(`Bearer ${creds.device.token}`) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        `Bearer ${creds.other.token}`,
        `Bearer ${tampered}`,
        `bearer ${creds.device.token}`,
        `Bearer  ${creds.device.token}`,
        creds.device.token,
        `Bearer ${ADMIN_KEY}`,
        'Bearer ',
        'Basic dXNlcjpwYXNz',
        `Bearer ${'x'.repeat(6_000)}`,
        'Bearer a.b.c',
      ),
    },
  );
  const appKey = fc.oneof(fc.constantFrom(...creds.appKeys), fc.constantFrom('', 'wrong', 'x'.repeat(2_000), `${creds.appKeys[0]} `));
  const noise = fc.constantFrom<[string, string]>(
    ['x-forwarded-for', 'not-an-ip, ::1, 999.1.1.1'],
    ['x-request-id', '\u00ff'.repeat(10)],
    ['x-request-id', 'a'.repeat(500)],
    ['accept', 'text/html'],
    ['accept', 'application/xml;q=0'],
    ['x-device-info', 'not base64!'],
    ['x-device-info', Buffer.from('{"model":1}').toString('base64')],
    ['pallycon-client-meta', 'e30='],
    ['pallycon-client-meta', '!!'],
    ['if-none-match', '"x", W/"y", *'],
    ['if-modified-since', 'yesterday'],
    ['cookie', 'passgate-activation=..; a=%ZZ'],
    ['origin', 'null'],
  );
  return fc
    .tuple(fc.option(authorization, { freq: 4 }), fc.option(appKey, { freq: 3 }), fc.array(noise, { maxLength: 3 }))
    .map(([auth, key, extra]) => [...(auth === null ? [] : [['authorization', auth] as [string, string]]), ...(key === null ? [] : [['x-app-key', key] as [string, string]]), ...extra]);
}

/** A path parameter: the real value, an enum member, or something hostile (encoded, dot segments, unicode). */
function pathParam(name: string, schema: Json | undefined, creds: Credentials): fc.Arbitrary<string> {
  const real = name === 'code' ? [creds.code, creds.code.toLowerCase()] : Array.isArray(schema?.enum) ? (schema.enum as string[]) : domainValues(name);
  const hostile = fc.oneof(
    fc.constantFrom('..', '.', '%2e%2e', '%2E', '..%2F..%2Fadmin', '%00', '%ZZ', '%C3%28', '%E2%98%83', 'WIDEVINE', '\u00e9t\u00e9', 'a'.repeat(3_000), '../../admin/drm/revocations', '%252e'),
    fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent),
    fc.stringMatching(/^[A-Za-z0-9]{1,40}$/),
  );
  return real.length > 0 ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...real) }, { weight: 2, arbitrary: hostile }) : hostile;
}

/** The query string: documented parameters (valid-ish or hostile), duplicates, extras, broken encodings. */
function queryArb(op: Operation, doc: Doc): fc.Arbitrary<string> {
  const params = ((op.op.parameters ?? []) as Json[]).filter((p) => p.in === 'query');
  const documented = params.map((p) => {
    const name = p.name as string;
    // wait: only 0 or 1 when valid, so a long-poll on a pending code cannot hold the run for 30 s.
    const value = name === 'wait' ? fc.constantFrom('0', '1', '31', '-1', '1.5', 'x', '', '007', '99') : fromSchema(p.schema as Json, doc, name).map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
    return fc.option(
      value.map((v) => `${encodeURIComponent(name)}=${encodeURIComponent(String(v))}`),
      { freq: 5 },
    );
  });
  const extras = fc.array(fc.constantFrom('wait=1&wait=2', 'resource=REF30&resource=PREMIUM', '__proto__[x]=1', 'a=%ZZ', '%ZZ', 'code=ABCD', 'x=\u00ff', `q=${'a'.repeat(4_000)}`, '&&=&'), { maxLength: 2 });
  return fc.tuple(fc.tuple(...documented), extras).map(([parts, more]) => {
    const all = [...parts.filter((p): p is string => p !== null), ...more];
    return all.length > 0 ? `?${all.join('&')}` : '';
  });
}

/** The body for an operation, from its documented content types, plus hostile ones. */
function bodyArb(op: Operation, doc: Doc, creds: Credentials): fc.Arbitrary<{ type?: string; body?: Buffer }> {
  const content = ((op.op.requestBody as Json | undefined)?.content ?? {}) as Record<string, Json>;
  const types = Object.keys(content);
  if (types.includes('application/json')) {
    const valid = fromSchema(content['application/json']?.schema as Json, doc);
    const json = fc.oneof({ weight: 5, arbitrary: valid }, { weight: 3, arbitrary: wrongJson(valid) }).map((v) => Buffer.from(JSON.stringify(v) ?? ''));
    return fc.tuple(jsonTypes, fc.oneof({ weight: 4, arbitrary: json }, { weight: 1, arbitrary: garbageBytes })).map(([type, body]) => ({ ...(type ? { type } : {}), body }));
  }
  if (types.includes('application/x-www-form-urlencoded') && types.length === 1) {
    const fields = fc.dictionary(fc.constantFrom('csrf', 'code', 'data', 'ticket', 'mvpd', 'spc', 'x'), fc.oneof(fc.constant(creds.code), hostileString, fc.base64String({ maxLength: 200 })), { maxKeys: 4 });
    const type = fc.oneof({ weight: 5, arbitrary: fc.constant('application/x-www-form-urlencoded') }, { weight: 1, arbitrary: fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x') });
    return fc.tuple(type, fc.oneof({ weight: 4, arbitrary: formOf(fields) }, { weight: 1, arbitrary: garbageBytes })).map(([t, body]) => ({ type: t, body }));
  }
  if (types.length > 0) {
    // DRM challenges: raw bytes of any documented (or undocumented) type.
    const challenge = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 2_000 }).map((b) => Buffer.from(b)),
      fc.base64String({ minLength: 4, maxLength: 400 }).map((b) => Buffer.from(`spc=${encodeURIComponent(b)}`)),
      fc.constant(Buffer.from('<soap:Envelope><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"/></soap:Body></soap:Envelope>')),
      fc.constant(Buffer.alloc(70_000, 1)),
    );
    return fc.tuple(fc.constantFrom(...types, 'application/json', 'text/plain', 'image/png'), challenge).map(([type, body]) => ({ type, body }));
  }
  // No documented body: usually none, sometimes one anyway.
  return fc.oneof({ weight: 5, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.tuple(jsonTypes, garbageBytes).map(([type, body]) => ({ type, body })) });
}

/** Content-Length that the parser has to refuse or that promises more than arrives. */
const weirdLength = fc.constantFrom('-1', 'abc', '1, 2', '+5', '0x10', ' 3', '99999999999999999999', 'more');

function requestArb(op: Operation, doc: Doc, creds: Credentials): fc.Arbitrary<FuzzRequest> {
  const params = ((op.op.parameters ?? []) as Json[]).filter((p) => p.in === 'path');
  const path = fc.tuple(...params.map((p) => pathParam(p.name as string, p.schema as Json, creds))).map((values) =>
    params.reduce((template, p, i) => template.replace(`{${p.name as string}}`, values[i] ?? ''), op.path),
  );
  return fc
    .record({
      path,
      query: queryArb(op, doc),
      headers: headerArb(creds),
      payload: bodyArb(op, doc, creds).chain(({ type, body }) => encoded(body).map((coded) => ({ type, ...coded }))),
      // 1 in 25 requests (fc.option's freq is the odds of null, so spelled out).
      length: fc.oneof({ weight: 24, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: weirdLength }),
      chunked: fc.boolean(),
    })
    .map(({ path: p, query, headers, payload, length, chunked }) => {
      const all: [string, string][] = [...headers, ...payload.headers];
      if (payload.type) all.push(['content-type', payload.type]);
      let body = payload.body;
      if (length !== null) {
        // 'more': declares one byte more than is sent (the request deadline answers it); others are malformed.
        all.push(['content-length', length === 'more' ? String((body?.length ?? 0) + 1) : length]);
        body ??= Buffer.from('{}');
      }
      return { method: op.method.toUpperCase(), path: `${p}${query}`, headers: all, ...(body ? { body } : {}), chunked: chunked && length === null };
    });
}

// ---------------------------------------------------------------- the run

async function setUp(f: PassgateFixture): Promise<Credentials> {
  // A signed-in device (profile and a Permit), so requests with its token reach deep into the routes.
  const device = await registerDevice(f);
  const other = await registerDevice(f);
  const code = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;
  await signInAtSim(f, code);
  const waited = await getJson(f, device, `/v1/authentication/${code}?wait=30`);
  if (waited.body.status !== 'authenticated') throw new Error(`sign-in did not complete: ${JSON.stringify(waited.body)}`);
  const authorized = await getJson(f, device, '/v1/authorize', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-1' } }),
  });
  if (authorized.status !== 200) throw new Error(`authorize answered ${authorized.status}`);
  return { device, other, code, appKeys: [f.apps.demo.key, f.apps.roku.key] };
}

const operationMethods = new Set(['get', 'post', 'put', 'delete', 'patch']);

/** Sign-out and operator actions last: they take away the profile and Permit the other operations exercise. */
const order = (op: Operation) => (op.path.startsWith('/admin') ? 2 : op.path === '/v1/logout' ? 1 : 0);

test('every documented operation: no 5xx, every error a problem (HTML on /activate)', async (t) => {
  t.timeout(Math.max(120_000, TOTAL_RUNS * 200));
  const f = await withPassgate(t, {
    env: { PASSGATE_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`, PASSGATE_ADMIN_KEY: ADMIN_KEY, PASSGATE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
    simRules: unthrottled,
    logLevel: 'warn',
    file: {
      throttle: { rate_per_second: 10_000, burst: 100_000, max_wait_ms: 0 },
      signin: { poll_interval_ms: 3_000 },
      activation: { attempts_per_ip: { burst: 100_000, per_minute: 100_000 }, attempts_global: { burst: 100_000, per_minute: 100_000 } },
    },
  });
  const creds = await setUp(f);
  const doc = (await (await f.call('/openapi.json')).json()) as Doc;
  const operations: Operation[] = Object.entries(doc.paths)
    .flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => operationMethods.has(method))
        .map(([method, op]) => ({ method, path, op, ops: item.servers !== undefined })),
    )
    .sort((a, b) => order(a) - order(b));
  const runsPerOperation = Math.max(5, Math.ceil(TOTAL_RUNS / operations.length));

  const statuses = new Map<number, number>();
  const dependency503 = new Map<string, number>();
  const failures: string[] = [];
  let sent = 0;
  let unsendable = 0;
  let fiveHundreds = 0;

  // PASSGATE_FUZZ_ONLY: a regular expression on "METHOD /path" to replay some operations.
  const only = process.env.PASSGATE_FUZZ_ONLY ? new RegExp(process.env.PASSGATE_FUZZ_ONLY) : undefined;
  for (const op of operations) {
    const label = `${op.method.toUpperCase()} ${op.path}`;
    if (only && !only.test(label)) continue;
    let lastViolation: string | undefined;
    try {
      await fc.assert(
        fc.asyncProperty(requestArb(op, doc, creds), async (req) => {
          let answer: Answer;
          try {
            answer = await send(op.ops ? f.passgate.opsUrl : f.url, req);
          } catch (error) {
            if ((error as { unsendable?: boolean }).unsendable) {
              unsendable++;
              return;
            }
            throw error;
          }
          sent++;
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (answer.status >= 500) {
            const code = problemCode(answer);
            if (answer.status === 503 && code && documented503.has(code)) dependency503.set(code, (dependency503.get(code) ?? 0) + 1);
            else fiveHundreds++;
          }
          const wrong = violation(req, answer);
          if (wrong) {
            lastViolation = `${describe(req)}\n  → ${wrong}`;
            throw new Error(lastViolation);
          }
        }),
        { seed: SEED, numRuns: runsPerOperation, endOnFailure: process.env.PASSGATE_FUZZ_SHRINK === undefined },
      );
    } catch (error) {
      // fast-check's report: the run, the counterexample, then the property's own error (what was wrong).
      const lines = (error as Error).message.split('\n');
      failures.push([`${label}:`, ...lines.slice(0, 2), lastViolation ?? lines.slice(2, 6).join('\n')].join('\n'));
    }
  }

  const statusList = [...statuses.entries()].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ');
  t.log(`seed ${SEED}: ${operations.length} operations × ${runsPerOperation} runs; requests sent ${sent} (${unsendable} refused by the client itself)`);
  t.log(`statuses: ${statusList}`);
  t.log(`5xx (not a documented 503): ${fiveHundreds}; documented 503 by code: ${JSON.stringify(Object.fromEntries(dependency503))}`);
  const errorLines = f.log.lines.filter((line) => Number(line.level) >= 50);
  t.log(`server error log lines: ${errorLines.length}`);
  for (const line of errorLines.slice(0, 5)) t.log(JSON.stringify(line).slice(0, 1_000));
  t.deepEqual(failures, []);
  t.is(fiveHundreds, 0);
  t.true(sent >= (only ? 1 : operations.length * 3), 'most generated requests reach passgate');
});
