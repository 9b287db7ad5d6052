import { randomUUID } from 'node:crypto';
import type { AgentConfig } from '../config/agent.js';
import type { AppContext, AppMiddleware } from '../http/context.js';
import { Problem, type ProblemCode } from '../http/problem.js';
import { routeTable } from '../http/route-table.js';
import { validate, validInput } from '../http/validate.js';
import type { AgentMetrics, AgentRoute } from './metrics.js';
import { fileIdSchema } from './files.js';
import { AGENT_SESSION_PATTERN, authenticateSchema, jobIdSchema, type AuthenticateInput } from './schema.js';
import type { AgentService } from './service.js';
import { receiveUpload, UploadError } from './upload.js';

declare module '../http/context.js' {
  interface AppState {
    /** The partner an /agent request's bearer secret proves (set by requirePartner). */
    partner?: string;
  }
}

/** Every partner secret is compared (constant time each), so the answer time does not tell which one nearly matched. */
function requirePartner(partners: AgentConfig['partners']): AppMiddleware {
  return async (ctx, next) => {
    const match = /^Bearer +([^\s]+) *$/i.exec(ctx.get('authorization'));
    let found: string | undefined;
    for (const partner of partners) if (match?.[1] !== undefined && partner.secret.equals(match[1])) found ??= partner.id;
    if (!found) throw new Problem('invalid_partner_credential', 'Send Authorization: Bearer <partner secret>.', { headers: { 'WWW-Authenticate': 'Bearer realm="passgate-agent"' } });
    ctx.state.partner = found;
    await next();
  };
}

const partnerOf = (ctx: AppContext): string => {
  if (!ctx.state.partner) throw new Error('partnerOf: requirePartner did not run');
  return ctx.state.partner;
};

function agentSession(ctx: AppContext): string {
  const value = ctx.get('kep-agentsession');
  if (!AGENT_SESSION_PATTERN.test(value)) {
    throw new Problem('invalid_agent_session', value === '' ? 'The Kep-AgentSession header is required.' : 'Kep-AgentSession must be 8–256 printable ASCII characters without spaces.');
  }
  return value;
}

/** Counts each /agent answer by route and outcome (the success outcome, or the problem code). */
function counted(metrics: AgentMetrics, route: AgentRoute): AppMiddleware {
  return async (ctx, next) => {
    try {
      await next();
      metrics.requests.inc({ route, outcome: (ctx.state as { agentOutcome?: string }).agentOutcome ?? 'ok' });
    } catch (error) {
      metrics.requests.inc({ route, outcome: error instanceof Problem ? error.code : 'internal_error' });
      throw error;
    }
  };
}

const uploadProblems: Record<UploadError['reason'], ProblemCode> = {
  not_multipart: 'unsupported_media_type',
  too_large: 'payload_too_large',
  malformed: 'invalid_body',
  aborted: 'invalid_body',
  spool: 'agent_spool_unavailable',
};

/** SPEC §5: the partner agent's API. Every route needs the partner's bearer secret. */
export function agentRouter(service: AgentService, config: AgentConfig, metrics: AgentMetrics) {
  const router = routeTable();
  const partner = requirePartner(config.partners);
  const outcome = (ctx: AppContext, value: string) => ((ctx.state as { agentOutcome?: string }).agentOutcome = value);

  router.post('/agent/v1/drm/authenticate', counted(metrics, 'authenticate'), partner, validate(authenticateSchema), async (ctx: AppContext) => {
    const dsid = agentSession(ctx);
    const { fileId, userPrincipal } = validInput<AuthenticateInput>(ctx);
    const answer = await service.authenticate(partnerOf(ctx), dsid, fileId, userPrincipal);
    outcome(ctx, answer.fileType === 'drm' ? 'allow' : 'unknown');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  });

  router.post('/agent/v1/drm/decrypt', counted(metrics, 'decrypt'), partner, async (ctx: AppContext) => {
    const dsid = agentSession(ctx);
    // The principal comes from the session only; an unknown one is refused before any byte is stored.
    const principal = await service.principalOf(partnerOf(ctx), dsid);
    const jobId = randomUUID();
    let upload;
    try {
      upload = await receiveUpload(ctx.req, config.spoolDir, config.maxUploadBytes, jobId);
    } catch (error) {
      if (!(error instanceof UploadError)) throw error;
      // A refused upload is not read further: the connection ends with the answer.
      ctx.set('Connection', 'close');
      throw new Problem(uploadProblems[error.reason], error.message, error.field ? { errors: [{ path: error.field, message: error.message }] } : {});
    }
    const fileId = fileIdSchema.safeParse(upload.fileId);
    if (!fileId.success) {
      await service.discardUpload(upload.file);
      throw new Problem('invalid_body', 'The fileId field must be 1–1024 bytes of UTF-8 without control characters.', { errors: [{ path: 'fileId', message: 'invalid' }] });
    }
    await service.enqueue(partnerOf(ctx), dsid, principal, jobId, upload);
    outcome(ctx, 'accepted');
    ctx.status = 202;
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Location', `/agent/v1/drm/jobs/${jobId}`);
    ctx.body = { jobId };
  });

  router.get('/agent/v1/drm/jobs/:jobId', counted(metrics, 'job'), partner, async (ctx: AppContext) => {
    const jobId = jobIdSchema.safeParse(ctx.params.jobId);
    if (!jobId.success) throw new Problem('not_found', 'No decrypt job with this id for this partner.');
    // UUIDs are case-insensitive (RFC 9562); passgate mints them lower case.
    ctx.body = await service.status(partnerOf(ctx), jobId.data.toLowerCase());
    outcome(ctx, 'found');
    ctx.set('Cache-Control', 'no-store');
  });

  return router;
}
