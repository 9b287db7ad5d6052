import { z } from 'zod';
import type { AppConfig } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import type { Logger } from '../infra/logger.js';
import { encodeDeviceInfo } from './device-identity.js';
import { misconfigurationCodes, toProblem, UpstreamProblem } from './errors.js';
import type { PassTransport } from './transport.js';

/**
 * The two DCR calls (adobe-pass.md §2.2, §2.3), typed. Both carry only the headers DCR expects:
 * Content-Type, Accept, X-Device-Info and X-Forwarded-For — no Authorization, no AP-Device-Identifier.
 */

export const ACCEPT_JSON = 'application/json;charset=utf-8';

const registered = z.object({ client_id: z.string().min(1), client_secret: z.string().min(1) });
const issued = z.object({
  access_token: z.string().min(1),
  // Seconds; tolerated as a numeric string too (§12.3 spirit: lenient on number encodings).
  expires_in: z.union([z.number().positive(), z.string().regex(/^\d+$/).transform(Number)]),
});

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

export interface IssuedToken {
  accessToken: string;
  expiresInSeconds: number;
}

/** DCR calls carry no access token, but the device headers as every upstream call (SPEC §6). */
const dcrHeaders = (contentType: string, deviceInfo: Record<string, unknown>, client: ClientAddress): Record<string, string> => ({
  'content-type': contentType,
  accept: ACCEPT_JSON,
  'x-device-info': encodeDeviceInfo(deviceInfo, client),
  'x-forwarded-for': client.ip,
});

export class DcrCalls {
  constructor(private readonly deps: { transport: PassTransport; logger: Logger }) {}

  /** POST /o/client/register with the app's software statement. Throws an UpstreamProblem on any failure. */
  async register(app: AppConfig, deviceInfo: Record<string, unknown>, client: ClientAddress): Promise<ClientCredentials> {
    const operation = 'dcr.register';
    const answer = await this.deps.transport.send(client.ip, {
      operation,
      method: 'POST',
      path: '/o/client/register',
      headers: dcrHeaders('application/json;charset=utf-8', deviceInfo, client),
      json: { software_statement: app.softwareStatement.reveal(), ...(app.redirectUri ? { redirect_uri: app.redirectUri } : {}) },
      idempotent: false,
    });
    if (answer.kind !== 'ok') {
      const problem = toProblem(answer, operation);
      if (answer.kind === 'dcr' && misconfigurationCodes.has(answer.error)) {
        // A settings problem (software statement / redirect URI of this app), not the device's.
        this.deps.logger.error(
          { app: app.id, error: answer.error, description: answer.description },
          'pass: DCR refused the app registration — fix the software_statement / redirect_uri of this app in the configuration',
        );
      }
      throw problem;
    }
    const parsed = registered.safeParse(answer.body);
    if (!parsed.success) throw malformed(operation);
    return { clientId: parsed.data.client_id, clientSecret: parsed.data.client_secret };
  }

  /** POST /o/client/token (client_credentials, form body per the markdown, §12.6). */
  async token(credentials: ClientCredentials, deviceInfo: Record<string, unknown>, client: ClientAddress): Promise<IssuedToken> {
    const operation = 'dcr.token';
    const answer = await this.deps.transport.send(client.ip, {
      operation,
      method: 'POST',
      path: '/o/client/token',
      headers: dcrHeaders('application/x-www-form-urlencoded', deviceInfo, client),
      form: { client_id: credentials.clientId, client_secret: credentials.clientSecret, grant_type: 'client_credentials' },
      idempotent: false,
    });
    if (answer.kind !== 'ok') throw toProblem(answer, operation);
    const parsed = issued.safeParse(answer.body);
    if (!parsed.success) throw malformed(operation);
    return { accessToken: parsed.data.access_token, expiresInSeconds: parsed.data.expires_in };
  }
}

/** `invalid_client` on the token call: the upstream no longer knows these credentials (§2.3). */
export const isInvalidClient = (error: unknown): error is UpstreamProblem =>
  error instanceof UpstreamProblem && error.operation === 'dcr.token' && error.info.code === 'invalid_client';

function malformed(operation: string): UpstreamProblem {
  return new UpstreamProblem('upstream_rejected', `The Pass service answered ${operation} with an unexpected body.`, operation, {
    code: 'unexpected_response',
    action: 'none',
    status: 200,
  });
}
