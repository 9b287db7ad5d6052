import test from 'ava';
import { Problem } from '../../src/http/problem.js';
import { readAnswer, readEnhancedError, remedyFor, toProblem, UpstreamProblem, type PassAnswer } from '../../src/pass/errors.js';
import { decisionsSchema } from '../../src/pass/schema.js';

const json = { 'content-type': 'application/json' };
const failed = (answer: PassAnswer) => {
  if (answer.kind === 'ok') throw new Error('expected a failure');
  return answer;
};

test('top-level enhanced error (§7.1): every field read, remedy by action', (t) => {
  const body = {
    action: 'none',
    status: 400,
    code: 'invalid_parameter_service_provider',
    message: 'The service provider parameter value is missing or invalid.',
    helpUrl: 'https://example.invalid/help',
    trace: '12f6fef9-d2e0-422b-a9d7-60d799abe353',
  };
  const answer = readAnswer({ status: 400, headers: json, body });
  t.deepEqual(answer, {
    kind: 'enhanced',
    status: 400,
    error: {
      code: 'invalid_parameter_service_provider',
      action: 'none',
      status: 400,
      message: body.message,
      helpUrl: body.helpUrl,
      trace: body.trace,
    },
  });
  const problem = toProblem(failed(answer), 'configuration');
  t.true(problem instanceof Problem);
  t.is(problem.code, 'upstream_rejected');
  t.deepEqual(problem.toBody().upstream, { code: 'invalid_parameter_service_provider', action: 'none', message: body.message });
});

test('actions classify: retry, authentication, application-registration, configuration, none, unknown', (t) => {
  t.is(remedyFor({ action: 'retry' }), 'retry');
  t.is(remedyFor({ action: 'authentication' }), 'reauthenticate');
  t.is(remedyFor({ action: 'application-registration' }), 'refresh-token');
  t.is(remedyFor({ action: 'configuration' }), 'none');
  t.is(remedyFor({ action: 'none' }), 'none');
  t.is(remedyFor({ action: 'teleport' }), 'none');

  const of = (action: string, status = 403) => toProblem(failed(readAnswer({ status, headers: json, body: { code: 'x', action, status } })), 'op');
  t.is(of('retry').code, 'upstream_unavailable');
  t.is(of('retry').extra.headers?.['Retry-After'], '1');
  t.is(of('configuration').code, 'upstream_misconfigured');
  t.is(of('authentication').code, 'upstream_rejected');
  t.is(of('authentication').remedy, 'reauthenticate');
  t.is(of('application-registration', 401).code, 'upstream_rejected');
  t.is(of('none', 500).code, 'upstream_unavailable');
});

test('unknown codes, missing fields and a string status are tolerated', (t) => {
  t.deepEqual(readEnhancedError({ code: 'brand_new_code' }, 403), { code: 'brand_new_code', action: 'none', status: 403 });
  t.deepEqual(readEnhancedError({ code: 'c', status: '410', action: 'future-action', details: 'd' }, 400), {
    code: 'c',
    action: 'future-action',
    status: 410,
    details: 'd',
  });
  t.is(readEnhancedError({ message: 'no code' }, 400), undefined);
  t.is(readEnhancedError('text', 400), undefined);
  t.is(readEnhancedError(null, 400), undefined);
});

test('per-item errors on an HTTP 200 decision list are parsed with their own status and remedy', (t) => {
  const answer = readAnswer({
    status: 200,
    headers: json,
    body: {
      decisions: [
        { resource: 'REF30', serviceProvider: 'REF30', mvpd: 'Cablevision', source: 'mvpd', authorized: true, notBefore: '1697094207324', notAfter: 1697098802367 },
        {
          resource: 'PREMIUM',
          mvpd: 'Cablevision',
          source: 'mvpd',
          authorized: false,
          error: { action: 'none', status: 403, code: 'authorization_denied_by_mvpd', message: 'Deny', details: 'Your package…' },
        },
        { resource: 'LIVE', authorized: false, error: { code: 'network_received_error', action: 'retry' } },
        { resource: 'TP', authorized: false, error: { code: 'temporary_access_duration_limit_exceeded', action: 'authentication', status: 403 } },
      ],
    },
  });
  t.is(answer.kind, 'ok');
  const parsed = decisionsSchema.parse(answer.kind === 'ok' ? answer.body : undefined);
  const [permit, deny, retry, temp] = parsed.decisions;
  t.is(permit?.error, undefined);
  t.is(permit?.notBefore, 1697094207324); // §12.3: string timestamps normalised to numbers
  t.deepEqual(deny?.error, {
    code: 'authorization_denied_by_mvpd',
    action: 'none',
    status: 403,
    message: 'Deny',
    details: 'Your package…',
    remedy: 'none',
  });
  t.is(retry?.error?.remedy, 'retry');
  t.is(retry?.error?.status, 403);
  t.is(temp?.error?.remedy, 'reauthenticate');
});

test('the throttle\'s HTML 429 without Retry-After → upstream_throttled with Retry-After ≥ 1', (t) => {
  const answer = readAnswer({
    status: 429,
    headers: { 'content-type': 'text/html', server: 'openresty' },
    body: '<html><head><title>429 Too Many Requests</title></head></html>',
  });
  t.deepEqual(answer, { kind: 'throttled', status: 429 });
  const problem = toProblem(failed(answer), 'configuration');
  t.is(problem.code, 'upstream_throttled');
  t.is(problem.status, 429);
  t.true(Number(problem.extra.headers?.['Retry-After']) >= 1);
});

test('DCR errors: software statement problems are misconfiguration, invalid_client asks for new credentials', (t) => {
  for (const error of ['invalid_software_statement', 'unapproved_software_statement', 'invalid_redirect_uri']) {
    const answer = readAnswer({ status: 400, headers: json, body: { error, error_description: 'why' } });
    t.like(answer, { kind: 'dcr', error, description: 'why' });
    t.is(toProblem(failed(answer), 'dcr.register').code, 'upstream_misconfigured');
  }
  const invalidClient = toProblem(failed(readAnswer({ status: 400, headers: json, body: { error: 'invalid_client' } })), 'dcr.token');
  t.is(invalidClient.code, 'upstream_rejected');
  t.is(invalidClient.info.action, 'application-registration');
  t.is(toProblem(failed(readAnswer({ status: 400, headers: json, body: { error: 'invalid_request' } })), 'dcr.token').code, 'upstream_rejected');
});

test('garbage: HTML 5xx pages, empty bodies and unknown JSON are "unexpected", never a crash', (t) => {
  const html = readAnswer({ status: 503, headers: { 'content-type': 'text/html' }, body: '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>' });
  t.like(html, { kind: 'unexpected', status: 503, contentType: 'text/html' });
  t.is(toProblem(failed(html), 'configuration').code, 'upstream_unavailable');

  const empty = readAnswer({ status: 400, headers: {}, body: '' });
  t.like(empty, { kind: 'unexpected', status: 400, excerpt: '' });
  t.is(toProblem(failed(empty), 'configuration').code, 'upstream_rejected');

  const odd = readAnswer({ status: 404, headers: json, body: { status: 404, reason: 'nope' } });
  t.like(odd, { kind: 'unexpected', status: 404 });

  // JSON served as text still parses; a truncated body does not throw.
  t.like(readAnswer({ status: 400, headers: { 'content-type': 'text/plain' }, body: '{"code":"invalid_request","action":"none"}' }), {
    kind: 'enhanced',
    error: { code: 'invalid_request' },
  });
  t.like(readAnswer({ status: 500, headers: json, body: '{"code":' }), { kind: 'unexpected', status: 500 });
  const problem = toProblem(failed(readAnswer({ status: 500, headers: json, body: '{"code":' })), 'configuration');
  t.true(problem instanceof UpstreamProblem);
  t.is(problem.toBody().upstream?.code, 'unexpected_response');
});
