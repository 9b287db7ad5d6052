import test from 'ava';
import { memoryLogger } from '../helpers/with-app.js';

/**
 * Secrets never reach a log line: as the line's own field, one level down in any of its fields,
 * or at the fixed request/response header paths. Everything else is written as given, and the
 * caller's objects are never changed.
 */
const SECRET = 'hunter2-secret-value';

test('secret fields are redacted at the top level, one level down in any field, and at the header paths', (t) => {
  const log = memoryLogger();
  log.logger.info({ clientSecret: SECRET, deviceToken: SECRET, licenseToken: SECRET, siteKey: SECRET, route: '/v1/x' }, 'top');
  const form = { client_id: 'c1', client_secret: SECRET, grant_type: 'client_credentials' };
  const body = { deviceId: 'd1', deviceSecret: SECRET, password: SECRET, app_key: SECRET, nested: { deeper: 'kept' } };
  log.logger.warn({ form, body, upstream: { access_token: SECRET, software_statement: SECRET, status: 401 } }, 'nested');
  log.logger.info({ req: { headers: { authorization: `Bearer ${SECRET}`, cookie: SECRET, 'x-app-key': SECRET, 'x-admin-key': SECRET, accept: '*/*' } } }, 'headers');
  log.logger.info({ res: { headers: { 'set-cookie': SECRET } }, headers: { authorization: SECRET } }, 'response');

  t.false(log.text().includes(SECRET), log.text());
  const [top, nested, headers, response] = log.lines;
  t.like(top, { clientSecret: '[Redacted]', deviceToken: '[Redacted]', licenseToken: '[Redacted]', siteKey: '[Redacted]', route: '/v1/x' });
  t.deepEqual(nested?.form, { client_id: 'c1', client_secret: '[Redacted]', grant_type: 'client_credentials' });
  t.deepEqual(nested?.body, { deviceId: 'd1', deviceSecret: '[Redacted]', password: '[Redacted]', app_key: '[Redacted]', nested: { deeper: 'kept' } });
  t.deepEqual(nested?.upstream, { access_token: '[Redacted]', software_statement: '[Redacted]', status: 401 });
  t.deepEqual((headers?.req as { headers: unknown }).headers, { authorization: '[Redacted]', cookie: '[Redacted]', 'x-app-key': '[Redacted]', 'x-admin-key': '[Redacted]', accept: '*/*' });
  t.like(response, { res: { headers: { 'set-cookie': '[Redacted]' } }, headers: { authorization: '[Redacted]' } });
  // The caller's objects are untouched.
  t.is(form.client_secret, SECRET);
  t.is(body.deviceSecret, SECRET);
});

test('lines without secrets are written as given (the same object, no copy)', (t) => {
  const log = memoryLogger();
  const line = { method: 'POST', route: '/v1/license-token', status: 200, device: { app: 'demo', binding: 'b1' }, list: [{ password: 'in an array: not a field' }] };
  log.logger.info(line, 'request');
  t.like(log.lines[0], { ...line, msg: 'request' });
});

test('an error keeps its serializer (type, message, stack) when logged beside a redacted field', (t) => {
  const log = memoryLogger();
  log.logger.error({ err: new Error('boom'), form: { client_secret: SECRET } }, 'failed');
  t.false(log.text().includes(SECRET));
  t.like(log.lines[0], { err: { type: 'Error', message: 'boom' }, form: { client_secret: '[Redacted]' } });
  t.regex(String((log.lines[0]?.err as { stack?: string }).stack), /boom/);
});
