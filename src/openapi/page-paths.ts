import { content, headers, json, operation, ref, type ApiPart, type JsonSchema, type RequestBodyObject, type ResponseObject } from './operations.js';

const html = (description: string, extra?: Record<string, JsonSchema>): ResponseObject => content(description, 'text/html', { type: 'string' }, extra);
const redirect = (description: string): ResponseObject => ({ description, headers: { Location: headers.location } });

/** Form fields as the pages post them (parsed by hand so that any bad form still gets an HTML page). */
const codeForm: JsonSchema = {
  type: 'object',
  properties: { csrf: { type: 'string', description: 'The token from the page.' }, code: { type: 'string', maxLength: 64, description: 'The code shown on the TV (case, spaces and dashes ignored).' } },
  required: ['csrf', 'code'],
};
const mvpdForm: JsonSchema = {
  type: 'object',
  properties: {
    csrf: { type: 'string' },
    ticket: { type: 'string', description: 'Proof that this browser entered the code at POST /activate (the picker\'s ticket; the "one moment" page\'s does not open here).' },
    mvpd: { type: 'string', maxLength: 128 },
  },
  required: ['csrf', 'ticket', 'mvpd'],
};
const form = (schema: JsonSchema): RequestBodyObject => ({ required: true, content: { 'application/x-www-form-urlencoded': { schema } } });

/**
 * Every submission counts against per-IP and global limits; the pages answer HTML whatever
 * happens (a generic message for a wrong or expired code), with Cache-Control: no-store and a CSP.
 */
const submissionAnswers = {
  '303': redirect('On to the TV provider\'s sign-in (only ever the configured upstream) or to /activate/done.'),
  '400': html('A wrong or expired code, or a malformed form.'),
  '403': html('The CSRF token did not match: the form again.'),
  '413': html('The form is too large.'),
  '429': html(
    'Too many attempts (the attempt limits: wait a few minutes), or the viewer IP\'s upstream throttle still empty after throttle.max_wait_ms (the code form, the code kept: retry in a few seconds).',
    { 'Retry-After': headers.retryAfter },
  ),
  '503': html('The upstream or the store is unavailable: try again shortly.'),
};

/** The operational routes (SPEC §7) and the second-screen activation pages (SPEC §3). */
export function pagesApi(): ApiPart {
  return {
    schemas: {},
    paths: {
      '/': {
        get: operation({
          id: 'getServiceInfo',
          summary: 'Name and version',
          tag: 'operations',
          access: 'public',
          responses: { '200': json('passgate and its version.', ref('ServiceInfo')) },
          errors: [],
        }),
      },
      '/livez': {
        get: operation({
          id: 'getLiveness',
          summary: 'Liveness: the event loop answers',
          tag: 'operations',
          access: 'public',
          responses: { '200': json('Alive.', ref('Liveness')) },
          errors: [],
        }),
      },
      '/readyz': {
        get: operation({
          id: 'getReadiness',
          summary: 'Readiness: the store is reachable (the upstream is not checked)',
          tag: 'operations',
          access: 'public',
          responses: { '200': json('Ready.', ref('Readiness')) },
          errors: ['not_ready'],
        }),
      },
      '/metrics': {
        get: operation({
          id: 'getMetrics',
          summary: 'Prometheus metrics (on the ops listener, PASSGATE_METRICS_PORT)',
          tag: 'operations',
          access: 'public',
          responses: { '200': content('The Prometheus text exposition format.', 'text/plain') },
          errors: [],
        }),
      },
      '/openapi.json': {
        get: operation({
          id: 'getOpenApiDocument',
          summary: 'This document',
          tag: 'operations',
          access: 'public',
          responses: { '200': json('The OpenAPI 3.1 document.', { type: 'object' }) },
          errors: [],
        }),
      },
      '/activate': {
        get: operation({
          id: 'showActivationForm',
          summary: 'The code-entry page',
          description: '`?code=` (from the TV\'s QR code) pre-fills the field; nothing is submitted on GET.',
          tag: 'activation',
          access: 'public',
          parameters: [{ name: 'code', in: 'query', required: false, description: 'Pre-fills the code field.', schema: { type: 'string', maxLength: 64 } }],
          responses: { '200': html('The form (sets the CSRF cookie).') },
          errors: [],
        }),
        post: operation({
          id: 'submitActivationCode',
          summary: 'Submit the code',
          description: 'Looks the session up upstream; when it names no TV provider, answers the provider picker.',
          tag: 'activation',
          access: 'public',
          body: form(codeForm),
          responses: { '200': html('The TV provider picker, or "one moment" (see /activate/continue).'), ...submissionAnswers },
          errors: [],
        }),
      },
      '/activate/mvpd': {
        get: operation({
          id: 'activationPickerRefresh',
          summary: 'A refreshed picker URL: back to the code-entry page',
          tag: 'activation',
          access: 'public',
          responses: { '303': redirect('To /activate.') },
          errors: [],
        }),
        post: operation({
          id: 'submitActivationMvpd',
          summary: 'Pick the TV provider',
          tag: 'activation',
          access: 'public',
          body: form(mvpdForm),
          responses: {
            '200': html('"One moment" (see /activate/continue).'),
            ...submissionAnswers,
            '400': html('A wrong or expired code, an unknown provider (the picker again) or a malformed form.'),
          },
          errors: [],
        }),
      },
      '/activate/done': {
        get: operation({
          id: 'showActivationDone',
          summary: 'What happened: signed in with the MVPD (the code this browser sent on has a profile), a failed sign-in, signed out after a logout, or nothing to report (the upstream\'s redirectUrl)',
          tag: 'activation',
          access: 'public',
          responses: {
            '200': html('The outcome page; or "one moment, confirming" (its script, or Continue link, loads this page again) while the household IP\'s throttle bucket has no token yet for the look-up of the code\'s profile.'),
            '503': html('The upstream or the store is unavailable: try again shortly.'),
          },
          errors: [],
        }),
      },
      '/activate/continue': {
        get: operation({
          id: 'continueActivation',
          summary: 'Where the "one moment" page goes on: the redirect to the TV provider\'s sign-in, once the viewer IP has a throttle token',
          description:
            'The browser\'s request to the upstream\'s authenticate URL counts in its IP\'s upstream throttle, which the household\'s TV shares; ' +
            'when passgate\'s mirror of that bucket has no token yet, the submission answers a "one moment" page whose script (or Continue link) comes here.',
          tag: 'activation',
          access: 'public',
          parameters: [{ name: 'ticket', in: 'query', required: true, description: 'Issued by the "one moment" page, bound to this browser\'s cookie; single use.', schema: { type: 'string', maxLength: 200 } }],
          responses: {
            '200': html('"One moment" again: still no token.'),
            '303': redirect('On to the TV provider\'s sign-in (only ever the configured upstream).'),
            '400': html('A missing, expired, already used or foreign ticket, or the picker\'s ticket: the code form.'),
            '503': html('The store is unavailable: try again shortly.'),
          },
          errors: [],
        }),
      },
      '/activate/continue.js': {
        get: operation({
          id: 'getActivationContinueScript',
          summary: 'The "one moment" page\'s script: follows its Continue link after the wait',
          tag: 'activation',
          access: 'public',
          responses: { '200': content('The script.', 'text/javascript') },
          errors: [],
        }),
      },
      '/activate/style.css': {
        get: operation({
          id: 'getActivationStylesheet',
          summary: 'The pages\' stylesheet',
          tag: 'activation',
          access: 'public',
          responses: { '200': content('The stylesheet.', 'text/css') },
          errors: [],
        }),
      },
    },
  };
}
