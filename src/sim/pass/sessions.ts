import Router from '@koa/router';
import type { Context } from 'koa';
import { randomUUID } from 'node:crypto';
import { CODE_PATTERN, type SimSession, type SimState } from '../state.js';
import { describeDevice } from './device.js';
import { PassError } from './errors.js';
import { passState, requireHeaders } from './headers.js';
import { requireServiceProvider, sessionTime } from './lookup.js';
import { decideSession, type SessionOutcome } from './session-outcome.js';
import { missingParameters, readSessionForm, validateSessionParams } from './session-params.js';
import { noteSsoCaller } from './sso.js';
import { requestIdentity } from './temppass.js';

/** adobe-pass.md §3.2: the R columns of each sessions endpoint. */
const createHeaders = { authorization: true, deviceIdentifier: true, deviceInfo: true, contentType: 'form' } as const;
// §12.8: AP-Device-Identifier and X-Device-Info are not listed for resume and GET.
const resumeHeaders = { authorization: true, deviceIdentifier: false, deviceInfo: false, contentType: 'form' } as const;
const getHeaders = { authorization: true, deviceIdentifier: false, deviceInfo: false } as const;

/** A live session for the path's code: malformed → invalid_parameter_code, else unknown/expired/superseded → invalid_authentication_session. */
function requireSession(state: SimState, serviceProvider: string, code: string | undefined): SimSession {
  if (!code || !CODE_PATTERN.test(code)) throw new PassError('invalid_parameter_code');
  const session = state.liveSession(code, serviceProvider);
  if (!session) throw new PassError('invalid_authentication_session');
  return session;
}

/** The session window; §12.3: session timestamps are strings. */
const sessionWindow = (session: SimSession) => ({ notBefore: sessionTime(session.notBefore), notAfter: sessionTime(session.notAfter) });

type Authorize = Extract<SessionOutcome, { kind: 'authorize' }>;

/**
 * The authorize samples of both sessions pages (create samples 3-5, resume samples 3-5): no code
 * and no timestamps, on create and on resume alike.
 */
function authorizeBody(serviceProvider: string, outcome: Authorize, sessionId: string) {
  return {
    actionName: 'authorize',
    actionType: 'direct',
    reasonType: outcome.reasonType,
    url: `/api/v2/${serviceProvider}/decisions/authorize/${outcome.mvpd}`,
    sessionId,
    mvpd: outcome.mvpd,
    serviceProvider,
  };
}

/** `resume` on create, `retry` on resume: the client must supply what is missing (§4.2, §4.3). */
function incompleteBody(actionName: 'resume' | 'retry', session: SimSession, missing: string[]) {
  return {
    actionName,
    actionType: 'direct',
    reasonType: 'none',
    url: `/api/v2/${session.serviceProvider}/sessions/${session.code}`,
    missingParameters: missing,
    code: session.code,
    sessionId: session.sessionId,
    ...(session.params.mvpd ? { mvpd: session.params.mvpd } : {}),
    serviceProvider: session.serviceProvider,
    ...sessionWindow(session),
  };
}

function authenticateBody(session: SimSession) {
  return {
    actionName: 'authenticate',
    actionType: 'interactive',
    reasonType: 'none',
    url: `/api/v2/authenticate/${session.serviceProvider}/${session.code}`,
    code: session.code,
    sessionId: session.sessionId,
    mvpd: session.params.mvpd,
    serviceProvider: session.serviceProvider,
    ...sessionWindow(session),
  };
}

export function sessionRoutes(state: SimState): Router {
  const router = new Router();

  router.post('sessions.create', '/api/v2/:serviceProvider/sessions', requireHeaders(state, createHeaders), (ctx: Context) => {
    const serviceProvider = requireServiceProvider(state, ctx.params.serviceProvider);
    const params = readSessionForm(ctx.request.body);
    validateSessionParams(state, params);
    const { client, deviceId, device } = passState(ctx);
    if (!deviceId) throw new PassError('invalid_header_device_identifier');
    const owner = { clientId: client.clientId, deviceId, serviceProvider };
    // Platform identity / service token SSO: this sign-in's profile will serve the token's other apps.
    noteSsoCaller(state, ctx, owner);
    const outcome = decideSession(state, owner, params, requestIdentity(ctx));
    // 200, not 201 (§4.2), for every outcome.
    if (outcome.kind === 'authorize') {
      ctx.body = authorizeBody(serviceProvider, outcome, randomUUID());
      return;
    }
    // The X-Forwarded-For address stands for the device when X-Device-Info does not say (§3.3);
    // without either, the peer is what the upstream sees (as it sees the peer's port).
    const peer = ctx.request.socket;
    const connectionIp = device.connectionIp ?? (ctx.get('x-forwarded-for').split(',')[0]?.trim() || peer.remoteAddress);
    const connectionPort = peer.remotePort === undefined ? undefined : String(peer.remotePort);
    const session = state.createSession({
      ...owner,
      device: { ...device, ...(connectionIp ? { connectionIp } : {}), ...(connectionPort ? { connectionPort } : {}) },
      params,
    });
    ctx.body = outcome.kind === 'incomplete' ? incompleteBody('resume', session, outcome.missing) : authenticateBody(session);
  });

  router.post('sessions.resume', '/api/v2/:serviceProvider/sessions/:code', requireHeaders(state, resumeHeaders), (ctx: Context) => {
    const serviceProvider = requireServiceProvider(state, ctx.params.serviceProvider);
    const session = requireSession(state, serviceProvider, ctx.params.code);
    const given = readSessionForm(ctx.request.body);
    validateSessionParams(state, given);
    // The session keeps what it was given; the resume call adds to it (and may correct it).
    session.params = { ...session.params, ...given };
    const outcome = decideSession(state, session, session.params, requestIdentity(ctx));
    if (outcome.kind === 'authorize') {
      // profiles/code/{code} answers from this key (a used-up TempPass then reports its exhaustion).
      session.profileKey = outcome.key;
      ctx.body = authorizeBody(serviceProvider, outcome, session.sessionId);
      return;
    }
    ctx.body = outcome.kind === 'incomplete' ? incompleteBody('retry', session, outcome.missing) : authenticateBody(session);
  });

  router.get('sessions.get', '/api/v2/:serviceProvider/sessions/:code', requireHeaders(state, getHeaders), (ctx: Context) => {
    const serviceProvider = requireServiceProvider(state, ctx.params.serviceProvider);
    const session = requireSession(state, serviceProvider, ctx.params.code);
    const { mvpd, domainName, redirectUrl } = session.params;
    const missing = missingParameters(session.params);
    ctx.body = {
      // §12.4: existingParameters spells it domainName (the sample), missingParameters `domain`.
      existingParameters: {
        ...(redirectUrl ? { redirectUrl } : {}),
        ...(domainName ? { domainName } : {}),
        serviceProvider,
        ...(mvpd ? { mvpd } : {}),
      },
      ...(missing.length > 0 ? { missingParameters: missing } : {}),
      device: describeDevice(session.device),
      ...sessionWindow(session),
    };
  });

  return router;
}
