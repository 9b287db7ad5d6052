import Router from '@koa/router';
import test from 'ava';
import { gzipSync } from 'node:zlib';
import type { AppState } from '../../src/http/context.js';
import { withBareApp } from '../helpers/with-app.js';

/**
 * Request bodies (src/http/body.ts): plain `application/json` is read by jsonBody, every other JSON
 * request (a charset other than utf-8 spelled differently, a Content-Encoding, a vendor type) by
 * @koa/bodyparser. The two must agree: the same body gets the same parsed value or the same problem.
 */

async function echoApp(t: Parameters<typeof withBareApp>[0]) {
  const router = new Router<AppState>();
  router.post('/echo', (ctx) => {
    ctx.body = { got: ctx.request.body ?? null };
  });
  return withBareApp(t, [router]);
}

/** The same JSON text sent down the fast path and down the general one (gzip-encoded). */
const paths = {
  fast: (text: string) => ({ headers: { 'content-type': 'application/json' }, body: Buffer.from(text) }),
  'fast, charset': (text: string) => ({ headers: { 'content-type': 'Application/JSON; charset="UTF-8"' }, body: Buffer.from(text) }),
  general: (text: string) => ({ headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(text) }),
};

const cases: Array<[string, string, number, unknown]> = [
  ['an object', '{"resource":"REF30","n":[1,2]}', 200, { got: { resource: 'REF30', n: [1, 2] } }],
  ['an array, with leading white space', ' \n\t[1]', 200, { got: [1] }],
  ['an empty body', '', 200, { got: {} }],
  ['a scalar', '"x"', 400, { code: 'invalid_json' }],
  ['null', 'null', 400, { code: 'invalid_json' }],
  ['broken JSON', '{"a":', 400, { code: 'invalid_json' }],
  ['a __proto__ key', '{"a":{"__proto__":{"admin":true}}}', 400, { code: 'invalid_body', errors: [{ path: '(body)', message: 'a key named __proto__ is refused' }] }],
  ['over 64 KiB', JSON.stringify({ pad: 'x'.repeat(70_000) }), 413, { code: 'payload_too_large' }],
];

for (const [name, text, status, body] of cases) {
  test(`JSON body, ${name}: the same answer on every path`, async (t) => {
    const app = await echoApp(t);
    for (const [path, make] of Object.entries(paths)) {
      const { headers, body: bytes } = make(text);
      const response = await app.call('/echo', { method: 'POST', headers, body: bytes });
      t.is(response.status, status, path);
      if (status !== 200) t.is(response.headers.get('content-type'), 'application/problem+json', path);
      t.like(await response.json(), body as Record<string, unknown>, path);
    }
  });
}
