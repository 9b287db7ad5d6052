import test, { type ExecutionContext } from 'ava';
import { METHODS } from 'node:http';
import { packageVersion } from '../../src/config/package.js';
import { problemCatalogue } from '../../src/http/problem.js';
import { newDeviceId, sampleDeviceInfo, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';

/* GET /openapi.json (SPEC §11): served, structurally valid, covering every route the running app has, and agreeing with validation. */

type Json = { [key: string]: unknown };
interface Doc {
  openapi: string;
  info: { version: string; description: string };
  servers: { url: string }[];
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}

const ADMIN_KEY = 'openapi-test-admin-key-0123456789abcdef-0123';
const operationMethods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

async function fetchDoc(f: PassgateFixture): Promise<Doc> {
  const response = await f.call('/openapi.json');
  if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
  return (await response.json()) as Doc;
}

/** Every (method, path) of the running app: the routers' stacks, found through the dispatch middleware @koa/router mounts. */
function routesOf(f: PassgateFixture): { exact: Set<string>; anyMethod: Set<string>; routers: number } {
  const exact = new Set<string>();
  const anyMethod = new Set<string>();
  let routers = 0;
  for (const middleware of [...f.passgate.app.middleware, ...f.passgate.opsApp.middleware]) {
    const router = (middleware as { router?: { stack: { path: string | RegExp; methods: string[] }[] } }).router;
    if (!router) continue;
    routers++;
    for (const layer of router.stack) {
      if (layer.methods.length === 0) continue; // router.use: middleware, not a route
      if (typeof layer.path !== 'string') throw new Error(`a route with a RegExp path cannot be documented: ${String(layer.path)}`);
      const template = layer.path.replace(/:(\w+)/g, '{$1}');
      // router.all (e.g. the activation pages' 405 page for other methods): the path must be documented.
      if (METHODS.every((method) => layer.methods.includes(method))) {
        // A wildcard catch-all (the activation pages' HTML 404) answers what is *not* an operation.
        if (template.includes('{*')) continue;
        anyMethod.add(template);
        continue;
      }
      for (const method of layer.methods) {
        // @koa/router adds HEAD to every GET.
        if (method === 'HEAD' && layer.methods.includes('GET')) continue;
        exact.add(`${method} ${template}`);
      }
    }
  }
  return { exact, anyMethod, routers };
}

function operations(doc: Doc): { key: string; path: string; method: string; op: Json }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => operationMethods.includes(method))
      .map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op: op as Json })),
  );
}

function pointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

function refsIn(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) refsIn(item, found);
  else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else refsIn(value, found);
    }
  }
  return found;
}

const annotations = new Set(['description', 'title', 'format', 'default', 'examples', 'contentMediaType', 'deprecated', 'readOnly', 'writeOnly']);

/**
 * A small JSON Schema 2020-12 validator for the keywords the document uses; an unknown keyword
 * throws, so a schema this cannot judge fails the test instead of passing by default.
 */
function accepts(doc: Doc, schema: Json, value: unknown): boolean {
  const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  for (const [keyword, expected] of Object.entries(schema)) {
    if (annotations.has(keyword)) continue;
    const list = expected as unknown[];
    const num = expected as number;
    const str = expected as string;
    const sub = expected as Json;
    switch (keyword) {
      case '$ref': {
        const target = pointer(doc, str);
        if (!target) throw new Error(`unresolved ${str}`);
        if (!accepts(doc, target as Json, value)) return false;
        break;
      }
      case 'type': {
        const actual = typeOf(value);
        const ok = str === actual || (str === 'integer' && Number.isInteger(value)) || (str === 'number' && actual === 'number');
        if (!ok) return false;
        break;
      }
      case 'enum':
        if (!list.some((v) => JSON.stringify(v) === JSON.stringify(value))) return false;
        break;
      case 'const':
        if (JSON.stringify(expected) !== JSON.stringify(value)) return false;
        break;
      case 'properties':
        if (typeOf(value) === 'object') {
          for (const [name, property] of Object.entries(sub)) {
            const v = (value as Json)[name];
            if (v !== undefined && !accepts(doc, property as Json, v)) return false;
          }
        }
        break;
      case 'required':
        if (typeOf(value) === 'object' && !(list as string[]).every((name) => Object.hasOwn(value as Json, name))) return false;
        break;
      case 'additionalProperties':
        if (typeOf(value) === 'object') {
          const known = Object.keys((schema.properties ?? {}) as Json);
          for (const [name, v] of Object.entries(value as Json)) {
            if (known.includes(name)) continue;
            if (expected === false || (typeof expected === 'object' && !accepts(doc, sub, v))) return false;
          }
        }
        break;
      case 'items':
        if (Array.isArray(value) && !value.every((v) => accepts(doc, sub, v))) return false;
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < num) return false;
        break;
      case 'maxItems':
        if (Array.isArray(value) && value.length > num) return false;
        break;
      case 'minLength':
        if (typeof value === 'string' && [...value].length < num) return false;
        break;
      case 'maxLength':
        if (typeof value === 'string' && [...value].length > num) return false;
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(str, 'u').test(value)) return false;
        break;
      case 'minimum':
        if (typeof value === 'number' && value < num) return false;
        break;
      case 'maximum':
        if (typeof value === 'number' && value > num) return false;
        break;
      case 'exclusiveMinimum':
        if (typeof value === 'number' && value <= num) return false;
        break;
      case 'exclusiveMaximum':
        if (typeof value === 'number' && value >= num) return false;
        break;
      case 'allOf':
        if (!(list as Json[]).every((item) => accepts(doc, item, value))) return false;
        break;
      case 'anyOf':
        if (!(list as Json[]).some((item) => accepts(doc, item, value))) return false;
        break;
      case 'oneOf':
        if ((list as Json[]).filter((item) => accepts(doc, item, value)).length !== 1) return false;
        break;
      case 'not':
        if (accepts(doc, sub, value)) return false;
        break;
      default:
        throw new Error(`the test's validator does not know the keyword ${keyword}`);
    }
  }
  return true;
}

function requestSchema(doc: Doc, method: string, path: string): Json {
  const op = doc.paths[path]?.[method] as { requestBody?: { content: Record<string, { schema: Json }> } } | undefined;
  const schema = op?.requestBody?.content['application/json']?.schema;
  if (!schema) throw new Error(`no JSON request body documented for ${method.toUpperCase()} ${path}`);
  return schema;
}

/** The response as the document describes it for this operation and status: declared, of a declared media type, and (JSON) matching the schema. */
async function conforms(t: ExecutionContext, doc: Doc, method: string, path: string, response: Response): Promise<Json> {
  const op = doc.paths[path]?.[method] as { responses: Record<string, { content?: Record<string, { schema: Json }> }> } | undefined;
  const described = op?.responses[String(response.status)];
  if (!described) {
    t.fail(`${method.toUpperCase()} ${path} answered ${response.status}, which the document does not list`);
    return {};
  }
  if (!described.content) {
    t.is(await response.text(), '', `${method.toUpperCase()} ${path} ${response.status} has no body`);
    return {};
  }
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
  const schema = described.content?.[mediaType]?.schema;
  t.truthy(schema, `${method.toUpperCase()} ${path} ${response.status}: ${mediaType} is documented`);
  if (!/^application\/(problem\+)?json$/.test(mediaType)) {
    await response.body?.cancel();
    return {};
  }
  const body = (await response.json()) as Json;
  t.true(accepts(doc, schema ?? {}, body), `${method.toUpperCase()} ${path} ${response.status}: ${JSON.stringify(body)} matches the documented schema`);
  return body;
}

test('GET /openapi.json serves an OpenAPI 3.1.0 document: versioned, relative server, operations with responses, unique operationIds, every $ref resolving', async (t) => {
  const f = await withPassgate(t);
  const response = await f.call('/openapi.json');
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const doc = (await response.json()) as Doc;

  t.is(doc.openapi, '3.1.0');
  t.is(doc.info.version, packageVersion());
  t.deepEqual(doc.servers, [{ url: '/' }]);
  // The admin paths and /metrics name the ops listener as their server; no other path does.
  for (const [path, item] of Object.entries(doc.paths)) {
    const servers = (item as { servers?: { variables?: { port?: { description?: string } } }[] }).servers;
    if (path.startsWith('/admin/') || path === '/metrics') t.is(servers?.[0]?.variables?.port?.description, 'PASSGATE_METRICS_PORT', path);
    else t.is(servers, undefined, path);
  }
  t.regex(doc.info.description, /\/metrics.*ops listener/);
  t.regex(doc.info.description, /\/admin.*only on the ops listener/);

  const ops = operations(doc);
  t.true(ops.length > 20);
  const ids = ops.map(({ op }) => op.operationId);
  t.true(ids.every((id) => typeof id === 'string' && id !== ''));
  t.is(new Set(ids).size, ids.length, 'operationIds are unique');
  for (const { key, path, op } of ops) {
    const responses = op.responses as Record<string, unknown> | undefined;
    t.true(responses !== undefined && Object.keys(responses).length > 0, `${key} has responses`);
    t.true(Object.keys(responses ?? {}).every((status) => /^[1-5]\d\d$/.test(status)), `${key} lists HTTP statuses`);
    // Every {param} in the path is a declared path parameter, and the other way round.
    const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    const declared = ((op.parameters ?? []) as { name: string; in: string; required: boolean }[]).filter((p) => p.in === 'path');
    t.deepEqual(declared.map((p) => p.name).sort(), inPath, `${key} declares its path parameters`);
    t.true(declared.every((p) => p.required));
    for (const requirement of (op.security ?? []) as Json[]) {
      for (const scheme of Object.keys(requirement)) t.truthy(doc.components.securitySchemes[scheme], `${key}: security scheme ${scheme} exists`);
    }
  }

  const refs = refsIn(doc);
  t.true(refs.length > 0);
  for (const ref of new Set(refs)) t.not(pointer(doc, ref), undefined, `${ref} resolves inside the document`);
});

test('security: device token on /v1 except POST /v1/devices (X-App-Key), admin key on /admin, none elsewhere', async (t) => {
  const f = await withPassgate(t);
  const doc = await fetchDoc(f);
  t.like(doc.components.securitySchemes, {
    deviceToken: { type: 'http', scheme: 'bearer' },
    appKey: { type: 'apiKey', in: 'header', name: 'X-App-Key' },
    adminKey: { type: 'http', scheme: 'bearer' },
  });
  for (const { key, path, op } of operations(doc)) {
    const expected =
      key === 'POST /v1/devices'
        ? [{ appKey: [] }]
        : path.startsWith('/v1/')
          ? [{ deviceToken: [] }]
          : path.startsWith('/admin/')
            ? [{ adminKey: [] }]
            : path.startsWith('/agent/')
              ? [{ partnerSecret: [] }]
              : [];
    t.deepEqual(op.security, expected, key);
  }
});

test('problem responses: the Problem code enum is the whole catalogue, and each listed code has the status it is listed under', async (t) => {
  const f = await withPassgate(t);
  const doc = await fetchDoc(f);
  const problem = doc.components.schemas.Problem as { properties: { code: { enum: string[] } }; required: string[] };
  t.deepEqual(problem.properties.code.enum, Object.keys(problemCatalogue));
  t.deepEqual(problem.required, ['type', 'title', 'status', 'detail', 'code']);
  let listed = 0;
  for (const { key, op } of operations(doc)) {
    for (const [status, response] of Object.entries(op.responses as Record<string, { content?: Record<string, { schema: Json }> }>)) {
      const schema = response.content?.['application/problem+json']?.schema as { allOf: [Json, { properties: { code: { enum: string[] } } }] } | undefined;
      if (!schema) continue;
      t.deepEqual(schema.allOf[0], { $ref: '#/components/schemas/Problem' });
      for (const code of schema.allOf[1].properties.code.enum) {
        listed++;
        t.is(Number(problemCatalogue[code as keyof typeof problemCatalogue]?.status), Number(status), `${key}: ${code} under ${status}`);
      }
    }
    t.truthy((op.responses as Json)['500'], `${key} lists the generic 500`);
  }
  t.true(listed > 100);
});

test('coverage: every route of the running app is documented, and every documented operation is routed', async (t) => {
  // The default test config has every optional router (DRM in token mode, PlayReady RevInfo, the admin API) but the agent's.
  const agent = { partners: { p: { secret: 'partner-secret-for-openapi' } }, keys: [{ id: 'k', secret: 'ab'.repeat(32) }] };
  const f = await withPassgate(t, { env: { PASSGATE_ADMIN_KEY: ADMIN_KEY }, file: { agent } });
  const doc = await fetchDoc(f);
  const { exact, anyMethod, routers } = routesOf(f);
  t.true(routers >= 2, 'the route tables of both listeners were found');
  // Guards the harvesting itself: one route of each area must have been seen.
  for (const route of ['POST /v1/devices', 'GET /openapi.json', 'POST /v1/authorize', 'POST /activate', 'POST /admin/notifications', 'POST /drm/pallycon/callback', 'GET /drm/playready/revinfo', 'POST /agent/v1/drm/decrypt']) {
    t.true(exact.has(route), `${route} was found among the app's routes`);
  }

  const documented = new Set(operations(doc).map(({ key }) => key));
  const undocumented = [...exact].filter((route) => !documented.has(route));
  t.deepEqual(undocumented, [], 'routes missing from /openapi.json');
  for (const path of anyMethod) t.truthy(doc.paths[path], `${path} (any method) is documented`);

  const unrouted = [...documented].filter((route) => !exact.has(route));
  t.deepEqual(unrouted, [], 'documented operations the app does not route');
});

test('request schemas agree with validation: what the document rejects is 400 invalid_body, what it accepts passes validation', async (t) => {
  const f = await withPassgate(t, { env: { PASSGATE_ADMIN_KEY: ADMIN_KEY } });
  const doc = await fetchDoc(f);
  const registered = (await (await f.register()).json()) as { deviceToken: string };
  const auth = { authorization: `Bearer ${registered.deviceToken}` };

  const authorize = requestSchema(doc, 'post', '/v1/authorize');
  const resolved = pointer(doc, authorize.$ref as string) as Json;
  t.like(resolved, { type: 'object', additionalProperties: false });
  t.deepEqual(resolved.required, ['resource']);

  const cases: { path: string; body: unknown; valid: boolean; headers?: Record<string, string> }[] = [
    { path: '/v1/authorize', body: {}, valid: false },
    { path: '/v1/authorize', body: { resource: 'REF30', extra: 1 }, valid: false },
    { path: '/v1/authorize', body: { resource: '' }, valid: false },
    { path: '/v1/authorize', body: { resource: 'REF30', drm: { system: 'clearkey', contentId: 'ref30-a' } }, valid: false },
    { path: '/v1/authorize', body: { resource: 'REF30', drm: { system: 'widevine' } }, valid: false },
    { path: '/v1/authorize', body: { resource: 'REF30' }, valid: true },
    { path: '/v1/authorize', body: { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-a' } }, valid: true },
    { path: '/v1/preauthorize', body: { resources: [] }, valid: false },
    { path: '/v1/preauthorize', body: { resources: Array.from({ length: 51 }, (_, i) => `R${i}`) }, valid: false },
    { path: '/v1/preauthorize', body: { resources: ['REF30', 'PREMIUM'] }, valid: true },
    { path: '/v1/authentication', body: { mvpd: 'not an id!' }, valid: false },
    { path: '/v1/logout', body: { mvpd: 'Cablevision', all: true }, valid: false },
    { path: '/v1/license-token', body: { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30 a' } }, valid: false },
    { path: '/v1/license-token', body: { resource: 'REF30', drm: { system: 'fairplay', contentId: 'ref30-a' } }, valid: true },
    { path: '/v1/devices', body: { deviceId: newDeviceId(), deviceInfo: { ...sampleDeviceInfo, connectionIp: '203.0.113.9' } }, valid: false },
    { path: '/v1/devices', body: { deviceId: newDeviceId(), deviceInfo: { ...sampleDeviceInfo, osName: 'BeOS' } }, valid: false },
    { path: '/v1/devices', body: { deviceId: newDeviceId(), deviceInfo: sampleDeviceInfo }, valid: true },
    { path: '/admin/notifications', body: { device: { userId: 'ABC' } }, valid: false },
    { path: '/admin/notifications', body: { device: { userId: '0'.repeat(32) }, invalidate: ['permits'] }, valid: true },
  ];
  for (const { path, body, valid } of cases) {
    const label = `POST ${path} ${JSON.stringify(body).slice(0, 80)}`;
    t.is(accepts(doc, requestSchema(doc, 'post', path), body), valid, `the document ${valid ? 'accepts' : 'rejects'} ${label}`);
    const headers = path === '/v1/devices' ? { 'x-app-key': f.apps.demo.key } : path.startsWith('/admin/') ? { authorization: `Bearer ${ADMIN_KEY}` } : auth;
    const init = { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
    // The admin API answers on the ops listener only (SPEC §7).
    const response = path.startsWith('/admin/') ? await fetch(`${f.passgate.opsUrl}${path}`, init) : await f.call(path, init);
    const answer = (await response.json()) as { code?: string };
    if (valid) t.not(answer.code, 'invalid_body', `passgate accepts ${label}`);
    else t.is(answer.code, 'invalid_body', `passgate rejects ${label}`);
  }

  // Query parameters come from the same schemas: ?wait is whole seconds as a string.
  const statusOp = doc.paths['/v1/authentication/{code}']?.get as { parameters: { name: string; in: string; schema: Json }[] };
  const wait = statusOp.parameters.find((p) => p.name === 'wait' && p.in === 'query');
  t.truthy(wait);
  t.false(accepts(doc, wait?.schema ?? {}, 'soon'));
  t.true(accepts(doc, wait?.schema ?? {}, '5'));
  const licenseOp = doc.paths['/v1/license/{system}']?.post as { parameters: { name: string; in: string; required: boolean; schema: Json }[] };
  t.deepEqual(
    licenseOp.parameters.filter((p) => p.in !== 'header').map((p) => [p.in, p.name, p.required]),
    [['path', 'system', true], ['query', 'resource', true], ['query', 'contentId', true]],
  );
  t.deepEqual(licenseOp.parameters[0]?.schema, { type: 'string', enum: ['widevine', 'playready', 'fairplay'] });
});

test('real answers match the documented responses (status listed, media type declared, body matching the schema)', async (t) => {
  const f = await withPassgate(t);
  const doc = await fetchDoc(f);
  const registration = await f.register();
  const { deviceToken } = (await conforms(t, doc, 'post', '/v1/devices', registration)) as { deviceToken: string };
  const auth = { authorization: `Bearer ${deviceToken}` };
  const json = { 'content-type': 'application/json', ...auth };

  await conforms(t, doc, 'get', '/', await f.call('/'));
  await conforms(t, doc, 'get', '/livez', await f.call('/livez'));
  await conforms(t, doc, 'get', '/readyz', await f.call('/readyz'));
  await conforms(t, doc, 'get', '/v1/device', await f.call('/v1/device', { headers: auth }));
  await conforms(t, doc, 'get', '/v1/device', await f.call('/v1/device', { headers: { authorization: 'Bearer nope' } }));
  await conforms(t, doc, 'get', '/v1/mvpds', await f.call('/v1/mvpds', { headers: auth }));
  await conforms(t, doc, 'get', '/v1/profile', await f.call('/v1/profile', { headers: auth }));
  const started = (await conforms(t, doc, 'post', '/v1/authentication', await f.call('/v1/authentication', { method: 'POST', headers: json, body: '{}' }))) as { code: string };
  await conforms(t, doc, 'get', '/v1/authentication/{code}', await f.call(`/v1/authentication/${started.code}`, { headers: auth }));
  await conforms(t, doc, 'get', '/v1/authentication/{code}', await f.call('/v1/authentication/NOSUCHCODE', { headers: auth }));
  await conforms(t, doc, 'get', '/v1/authentication/{code}', await f.call(`/v1/authentication/${started.code}?wait=99`, { headers: auth }));
  await conforms(t, doc, 'post', '/v1/authorize', await f.call('/v1/authorize', { method: 'POST', headers: json, body: JSON.stringify({ resource: 'REF30' }) }));
  await conforms(t, doc, 'post', '/v1/authorize', await f.call('/v1/authorize', { method: 'POST', headers: json, body: '{"resource":' }));
  await conforms(t, doc, 'post', '/v1/license-token', await f.call('/v1/license-token', { method: 'POST', headers: json, body: JSON.stringify({ resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-a' } }) }));
  await conforms(t, doc, 'get', '/admin/drm/revocations', await fetch(`${f.passgate.opsUrl}/admin/drm/revocations`));


  // Not JSON: the status and the media type are the documented ones.
  await conforms(t, doc, 'get', '/v1/authentication/{code}/qr.svg', await f.call(`/v1/authentication/${started.code}/qr.svg`, { headers: auth }));
  await conforms(t, doc, 'get', '/v1/authentication/{code}/events', await f.call(`/v1/authentication/${started.code}/events`, { headers: auth }));
  await conforms(t, doc, 'get', '/activate', await f.call('/activate?code=ABCD'));
  await conforms(t, doc, 'post', '/activate', await f.call('/activate', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'code=ABCD&csrf=x' }));
  await conforms(t, doc, 'get', '/activate/mvpd', await f.call('/activate/mvpd'));
  await conforms(t, doc, 'get', '/activate/style.css', await f.call('/activate/style.css'));
  await conforms(t, doc, 'get', '/drm/playready/revallowinfo', await f.call('/drm/playready/revallowinfo'));
  await conforms(t, doc, 'post', '/drm/pallycon/callback', await f.call('/drm/pallycon/callback', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'data' }));
  await conforms(t, doc, 'post', '/v1/license/{system}', await f.call('/v1/license/widevine?resource=REF30&contentId=ref30-a', { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: 'challenge' }));
});
