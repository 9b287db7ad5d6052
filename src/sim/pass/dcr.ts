import Router from '@koa/router';
import type { Context } from 'koa';
import { randomUUID } from 'node:crypto';
import type { SimState } from '../state.js';

/** adobe-pass.md §2.2/§2.3: DCR errors are 400 `{ "error": "<value>" }`, not enhanced errors. */
export type DcrErrorCode =
  | 'invalid_request'
  | 'invalid_redirect_uri'
  | 'invalid_software_statement'
  | 'unapproved_software_statement'
  | 'invalid_client'
  | 'unauthorized_client'
  | 'unsupported_grant_type';

export class DcrError extends Error {
  constructor(
    readonly error: DcrErrorCode,
    readonly description: string,
  ) {
    super(error);
  }
}

interface SoftwareStatementClaims {
  software_id: string;
  scopes?: unknown;
}

/** A software statement is a JWT; the simulator reads its claims (it cannot verify Adobe's key). */
export function readSoftwareStatement(statement: string): SoftwareStatementClaims | undefined {
  const parts = statement.split('.');
  if (parts.length !== 3 || !parts.every((p, i) => /^[A-Za-z0-9_-]*$/.test(p) && (i === 2 || p.length > 0))) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')) as unknown;
    const payload = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as unknown;
    if (!isObject(header) || typeof header.alg !== 'string') return undefined;
    if (!isObject(payload) || typeof payload.software_id !== 'string' || payload.software_id === '') return undefined;
    return payload as unknown as SoftwareStatementClaims;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isUri(value: string): boolean {
  try {
    return new URL(value).protocol.length > 1;
  } catch {
    return false;
  }
}

/** One value of a form/query field; a repeated parameter is a malformed request (RFC 7591 §3.2.2). */
function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new DcrError('invalid_request', `parameter ${name} is repeated or not a string`);
  return value;
}

export function dcrRoutes(state: SimState): Router {
  const router = new Router();

  router.post('dcr.register', '/o/client/register', (ctx: Context) => {
    if (!ctx.is('application/json')) throw new DcrError('invalid_request', 'Content-Type must be application/json');
    if (!ctx.get('x-device-info')) throw new DcrError('invalid_request', 'X-Device-Info header is required');
    const body: unknown = ctx.request.body;
    if (!isObject(body)) throw new DcrError('invalid_request', 'body must be a JSON object');
    const statement = body.software_statement;
    if (typeof statement !== 'string' || statement === '') throw new DcrError('invalid_request', 'software_statement is required');
    const redirectUri = body.redirect_uri;
    if (redirectUri !== undefined && (typeof redirectUri !== 'string' || !isUri(redirectUri))) {
      throw new DcrError('invalid_redirect_uri', 'redirect_uri is not a valid URI');
    }
    const claims = readSoftwareStatement(statement);
    if (!claims) throw new DcrError('invalid_software_statement', 'software_statement is not a well-formed JWT');
    if (!state.rules.approvedSoftwareIds.includes(claims.software_id)) {
      throw new DcrError('unapproved_software_statement', 'software statement is not approved for use');
    }
    const client = state.registerClient(claims.software_id, typeof redirectUri === 'string' ? [redirectUri] : []);
    ctx.status = 201;
    ctx.body = {
      client_id: client.clientId,
      client_secret: client.clientSecret,
      client_id_issued_at: client.issuedAtSeconds,
      redirect_uris: client.redirectUris,
      grant_types: ['client_credentials'],
      scopes: ['api:client:v2'],
    };
  });

  router.post('dcr.token', '/o/client/token', (ctx: Context) => {
    // adobe-pass.md §12.6: the markdown documents a form body, the OpenAPI a query string; accept either, not both.
    const hasBody = ctx.request.length !== undefined && ctx.request.length > 0;
    if (hasBody && !ctx.is('application/x-www-form-urlencoded')) {
      throw new DcrError('invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
    }
    if (!ctx.get('x-device-info')) throw new DcrError('invalid_request', 'X-Device-Info header is required');
    const form = (isObject(ctx.request.body) ? ctx.request.body : {}) as Record<string, unknown>;
    const query = ctx.query as Record<string, unknown>;
    const inForm = form.client_id !== undefined || form.client_secret !== undefined;
    const inQuery = query.client_id !== undefined || query.client_secret !== undefined;
    if (inForm && inQuery) throw new DcrError('invalid_request', 'more than one mechanism for authenticating the client');
    if (ctx.get('authorization') && (inForm || inQuery)) {
      throw new DcrError('invalid_request', 'more than one mechanism for authenticating the client');
    }
    const source = inQuery ? query : form;
    const clientId = single(source.client_id, 'client_id');
    const clientSecret = single(source.client_secret, 'client_secret');
    const grantType = single(source.grant_type ?? (inQuery ? undefined : query.grant_type), 'grant_type');
    if (!clientId || !clientSecret || !grantType) {
      throw new DcrError('invalid_request', 'client_id, client_secret and grant_type are required');
    }
    if (grantType !== 'client_credentials') throw new DcrError('unsupported_grant_type', `grant_type ${grantType} is not supported`);
    const client = state.clients.get(clientId);
    // A revoked software statement's clients are refused like unknown ones (see SimState.isApproved).
    if (!client || client.clientSecret !== clientSecret || !state.isApproved(client)) {
      throw new DcrError('invalid_client', 'client credentials are invalid, the client needs to obtain new client credentials');
    }
    const token = state.issueToken(client.clientId);
    ctx.status = 201;
    ctx.body = {
      id: randomUUID(),
      access_token: token.accessToken,
      created_at: token.createdAt,
      expires_in: state.rules.accessTokenTtlSeconds,
      token_type: 'bearer',
    };
  });

  return router;
}
