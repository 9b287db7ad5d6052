import { authenticateSchema, JOB_RESULTS } from '../agent/schema.js';
import { errorsOf, fromZod, headers, json, jsonBody, operation, ref, type ApiPart, type ParameterObject } from './operations.js';

/** The partner agent (SPEC §5): authenticate, decrypt jobs, job status. Every route needs the partner's secret. */
export function agentApi(): ApiPart {
  const session: ParameterObject = {
    name: 'Kep-AgentSession',
    in: 'header',
    required: true,
    description: 'The DSID: the session key the partner platform gives this user (8–256 printable characters).',
    schema: { type: 'string', pattern: '^[\\x21-\\x7E]{8,256}$' },
  };
  const partner = ['invalid_partner_credential'] as const;
  return {
    schemas: {
      AgentAuthenticateRequest: fromZod(authenticateSchema),
      AgentAuthenticateAnswer: {
        type: 'object',
        properties: {
          result: { const: 'allow' },
          fileType: { enum: ['drm', 'unknown'], description: 'drm: a file passgate protected and this user may open; unknown: not registered, decrypt judges the bytes.' },
          fileId: { type: 'string' },
        },
        required: ['result', 'fileType', 'fileId'],
      },
      AgentJob: {
        type: 'object',
        properties: {
          jobId: { type: 'string', format: 'uuid' },
          state: { enum: ['queued', 'running', 'retrying', 'done', 'failed'], description: 'retrying: an adapter callback failed and is retried with backoff; failed: the adapter refused a callback for good.' },
          result: { enum: [...JOB_RESULTS] },
          attempts: { type: 'integer', minimum: 0, description: 'Adapter callbacks made so far.' },
        },
        required: ['jobId', 'state', 'attempts'],
      },
    },
    paths: {
      '/agent/v1/drm/authenticate': {
        post: operation({
          id: 'agentAuthenticate',
          summary: 'May this user open this file? Remembers the DSID → user principal for decrypt',
          description: 'A registered DRM file and an entitled principal: allow/drm; not entitled: 403 agent_access_denied; a registered plain file: 422 not_drm_file; an unknown file id: allow/unknown.',
          tag: 'agent',
          access: 'partnerSecret',
          parameters: [session],
          body: jsonBody('AgentAuthenticateRequest'),
          responses: { '200': json('Allowed.', ref('AgentAuthenticateAnswer')) },
          errors: [...partner, 'invalid_agent_session', ...errorsOf.jsonBody, 'agent_access_denied', 'not_drm_file', 'store_unavailable'],
        }),
      },
      '/agent/v1/drm/decrypt': {
        post: operation({
          id: 'agentDecrypt',
          summary: 'Remove the DRM: queue a job that judges the file and calls the adapter back',
          description:
            'The principal is the one the DSID was authenticated for. The upload is streamed to disk (config agent.max_upload_bytes). The job calls ' +
            'POST {adapter}/adapter/v1/drm/uploadResult, and on success POST {adapter}/adapter/v1/drm/uploadDecrypted with the plaintext, retried until the adapter answers 2xx.',
          tag: 'agent',
          access: 'partnerSecret',
          parameters: [session],
          body: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  properties: { fileId: { type: 'string', maxLength: 1024 }, file: { type: 'string', contentMediaType: 'application/octet-stream' } },
                  required: ['fileId', 'file'],
                },
              },
            },
          },
          responses: { '202': json('Queued.', { type: 'object', properties: { jobId: { type: 'string', format: 'uuid' } }, required: ['jobId'] }, { Location: headers.location }) },
          errors: [...partner, 'invalid_agent_session', 'unknown_agent_session', 'unsupported_media_type', 'invalid_body', 'invalid_json', 'payload_too_large', 'agent_spool_unavailable', 'store_unavailable'],
        }),
      },
      '/agent/v1/drm/jobs/{jobId}': {
        get: operation({
          id: 'agentJob',
          summary: 'A decrypt job of this partner',
          tag: 'agent',
          access: 'partnerSecret',
          parameters: [{ name: 'jobId', in: 'path', required: true, description: 'What decrypt answered.', schema: { type: 'string' } }],
          responses: { '200': json('The job.', ref('AgentJob')) },
          errors: [...partner, 'not_found', 'store_unavailable'],
        }),
      },
    },
  };
}
