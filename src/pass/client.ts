import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { ClientAddress } from '../http/client-address.js';
import type { Logger } from '../infra/logger.js';
import { Singleflight } from '../infra/singleflight.js';
import { coalesce } from './coordination.js';
import { ACCEPT_JSON } from './dcr.js';
import { encodeDeviceInfo } from './device-identity.js';
import { toProblem, UpstreamProblem, type PassAnswer } from './errors.js';
import type { PassMetrics } from './metrics.js';
import type { DeviceRecord } from './records.js';
import {
  configurationSchema,
  decisionsSchema,
  logoutSchema,
  partnerSessionSchema,
  profilesSchema,
  sessionActionSchema,
  sessionInfoSchema,
  type PassConfiguration,
  type PassDecisions,
  type PassLogout,
  type PartnerSessionAction,
  type PassProfiles,
  type SessionAction,
  type SessionInfo,
} from './schema.js';
import type { PassCall, PassTransport } from './transport.js';

/** Who a call is made for: the registered device, and where its current request comes from. */
export interface DeviceContext {
  device: DeviceRecord;
  client: ClientAddress;
  /**
   * AP-Device-Identifier's companion for promotional TempPass: the viewer's identity as the app sent
   * it (base64 JSON, rest-api-v2-appendix-headers-ap-temppass-identity.md). Forwarded, never logged.
   */
  tempPassIdentity?: string;
  /**
   * Apple partner SSO: the AP-Partner-Framework-Status value (base64 JSON,
   * rest-api-v2-appendix-headers-ap-partner-framework-status.md), sent on the calls whose pages list it. Never logged.
   */
  partnerFrameworkStatus?: string;
  /**
   * Platform identity (Adobe-Subject-Token) or service token (AD-Service-Token) SSO: the app's token,
   * sent as that header on the calls whose pages list it. Never logged.
   */
  ssoToken?: SsoToken;
}

/** Adobe-Subject-Token, its Roku spelling X-Roku-Reserved-Roku-Connect-Token (the request tables' one row), or AD-Service-Token. */
export type SsoTokenHeader = 'adobe-subject-token' | 'x-roku-reserved-roku-connect-token' | 'ad-service-token';
export interface SsoToken {
  header: SsoTokenHeader;
  value: string;
}

/** Form parameters of sessions create/resume (§4.2); absent ones are not sent. */
export interface SessionParams {
  mvpd?: string;
  domainName?: string;
  redirectUrl?: string;
}

/** Where the client gets access tokens (the DeviceRegistry). */
export interface TokenSource {
  accessToken(record: DeviceRecord, client: ClientAddress, options?: { rejected?: string }): Promise<string>;
}

type CallSpec = Omit<PassCall, 'headers' | 'idempotent'> & { idempotent?: boolean };

const seg = encodeURIComponent;

/**
 * Typed REST API V2 calls (adobe-pass.md §4.1–§4.9). Every call carries Authorization,
 * AP-Device-Identifier, X-Device-Info (with this request's connectionIp/Port) and
 * X-Forwarded-For = the device IP, plus Accept and the Content-Type of its body,
 * AP-TempPass-Identity when the app gave one, and AP-Visitor-Identifier when the app gave one
 * (on every call whose page lists it, i.e. all but configuration) — nothing else.
 * Answers are parsed and normalised (schema.ts); failures throw an UpstreamProblem (errors.ts).
 * A 401 refreshes the access token once and retries once.
 */
export class PassClient {
  private readonly reads = new Singleflight<unknown>();

  constructor(
    private readonly deps: {
      serviceProvider: string;
      transport: PassTransport;
      tokens: TokenSource;
      metrics: PassMetrics;
      logger: Logger;
    },
  ) {}

  private path(...parts: string[]): string {
    return `/api/v2/${seg(this.deps.serviceProvider)}/${parts.join('/')}`;
  }

  /** §4.1 GET configuration: the MVPD list (`mvpds` normalised to the top level). */
  configuration(ctx: DeviceContext): Promise<PassConfiguration> {
    return this.call(ctx, { operation: 'configuration', method: 'GET', path: this.path('configuration') }, configurationSchema);
  }

  /** §4.2 POST sessions. */
  createSession(ctx: DeviceContext, params: SessionParams): Promise<SessionAction> {
    return this.call(ctx, { operation: 'sessions.create', method: 'POST', path: this.path('sessions'), form: sessionForm(params) }, sessionActionSchema);
  }

  /** §4.3 POST sessions/{code}. */
  resumeSession(ctx: DeviceContext, code: string, params: SessionParams): Promise<SessionAction> {
    return this.call(
      ctx,
      { operation: 'sessions.resume', method: 'POST', path: this.path('sessions', seg(code)), form: sessionForm(params) },
      sessionActionSchema,
    );
  }

  /** §4.4 GET sessions/{code}. */
  getSession(ctx: DeviceContext, code: string): Promise<SessionInfo> {
    return this.call(ctx, { operation: 'sessions.get', method: 'GET', path: this.path('sessions', seg(code)) }, sessionInfoSchema);
  }

  /** §4.6 GET profiles. */
  profiles(ctx: DeviceContext): Promise<PassProfiles> {
    return this.call(ctx, { operation: 'profiles.all', method: 'GET', path: this.path('profiles') }, profilesSchema);
  }

  /** §4.6 GET profiles/{mvpd}. */
  profileForMvpd(ctx: DeviceContext, mvpd: string): Promise<PassProfiles> {
    return this.call(ctx, { operation: 'profiles.mvpd', method: 'GET', path: this.path('profiles', seg(mvpd)) }, profilesSchema);
  }

  /** §4.6 GET profiles/code/{code} (the polling call). */
  profileByCode(ctx: DeviceContext, code: string): Promise<PassProfiles> {
    return this.call(ctx, { operation: 'profiles.code', method: 'GET', path: this.path('profiles', 'code', seg(code)) }, profilesSchema);
  }

  /** §4.8 POST decisions/preauthorize/{mvpd}: per-item errors are in each decision's `error`. */
  preauthorize(ctx: DeviceContext, mvpd: string, resources: string[]): Promise<PassDecisions> {
    return this.call(
      ctx,
      { operation: 'decisions.preauthorize', method: 'POST', path: this.path('decisions', 'preauthorize', seg(mvpd)), json: { resources } },
      decisionsSchema,
    );
  }

  /** §4.7 POST decisions/authorize/{mvpd}: never coalesced with other callers' calls beyond this device. */
  authorize(ctx: DeviceContext, mvpd: string, resources: string[]): Promise<PassDecisions> {
    return this.call(
      ctx,
      { operation: 'decisions.authorize', method: 'POST', path: this.path('decisions', 'authorize', seg(mvpd)), json: { resources } },
      decisionsSchema,
    );
  }

  /**
   * §4.9 GET logout/{mvpd}?redirectUrl=. Not retried by the HTTP layer although it is a GET: the
   * upstream deletes the profile before answering, so a retry would answer `invalid` and lose the
   * MVPD logout url.
   */
  logout(ctx: DeviceContext, mvpd: string, redirectUrl: string): Promise<PassLogout> {
    return this.call(
      ctx,
      { operation: 'logout', method: 'GET', path: this.path('logout', seg(mvpd)), searchParams: { redirectUrl }, idempotent: false },
      logoutSchema,
    );
  }

  /**
   * POST sessions/sso/{partner} (rest-api-v2-partner-single-sign-on-apis-retrieve-partner-authentication-request.md):
   * with ctx.partnerFrameworkStatus; domainName and redirectUrl serve the fallback to the basic flow.
   */
  partnerSession(ctx: DeviceContext, partner: string, params: Required<Pick<SessionParams, 'domainName' | 'redirectUrl'>>): Promise<PartnerSessionAction> {
    return this.call(
      ctx,
      { operation: 'sso.sessions', method: 'POST', path: this.path('sessions', 'sso', seg(partner)), form: sessionForm(params) },
      partnerSessionSchema,
    );
  }

  /**
   * POST profiles/sso/{partner} (…-retrieve-profile-using-partner-authentication-response.md): the
   * partner's SAML response (base64; the form encoding URL-encodes it) → the partner profile (201).
   */
  partnerProfile(ctx: DeviceContext, partner: string, samlResponse: string): Promise<PassProfiles> {
    return this.call(
      ctx,
      { operation: 'sso.profiles', method: 'POST', path: this.path('profiles', 'sso', seg(partner)), form: { SAMLResponse: samlResponse } },
      profilesSchema,
    );
  }

  /** Identical in-flight GETs of one device share one call (key: operation, path, query, fingerprint, client id). */
  private call<S extends z.ZodType>(ctx: DeviceContext, spec: CallSpec, schema: S): Promise<z.output<S>> {
    if (spec.method !== 'GET') return this.exchange(ctx, spec, schema);
    const query = new URLSearchParams(spec.searchParams ?? {}).toString();
    // Calls for different TempPass identities must not share an answer, nor calls that carry different
    // visitor ids share one upstream call (each visitor's call reaches the upstream); both only as digests.
    const key = [
      spec.operation,
      spec.path,
      query,
      ctx.device.fingerprint,
      ctx.device.clientId,
      digestOf(ctx.tempPassIdentity),
      digestOf(ctx.client.visitor),
      // Calls with different SSO credentials may have different answers (an SSO profile, or none).
      digestOf(partnerFrameworkStatusOf(ctx)),
      digestOf(ssoTokenKey(ssoTokenOf(ctx))),
    ].join('\n');
    return coalesce(this.reads, key, 'read', this.deps.metrics, () => this.exchange(ctx, spec, schema)) as Promise<z.output<S>>;
  }

  private async exchange<S extends z.ZodType>(ctx: DeviceContext, spec: CallSpec, schema: S): Promise<z.output<S>> {
    let token = await this.deps.tokens.accessToken(ctx.device, ctx.client);
    let answer = await this.send(ctx, spec, token);
    if (answer.kind !== 'ok' && answer.status === 401) {
      // Checklist: on 401 refresh the token first, then retry — once.
      this.deps.logger.info({ operation: spec.operation }, 'pass: access token refused (401); refreshing it and retrying once');
      token = await this.deps.tokens.accessToken(ctx.device, ctx.client, { rejected: token });
      answer = await this.send(ctx, spec, token);
    }
    if (answer.kind !== 'ok') throw toProblem(answer, spec.operation);
    const parsed = schema.safeParse(answer.body);
    if (!parsed.success) {
      this.deps.logger.warn({ operation: spec.operation, issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) }, 'pass: unexpected answer body');
      throw new UpstreamProblem('upstream_rejected', `The Pass service answered ${spec.operation} with an unexpected body.`, spec.operation, {
        code: 'unexpected_response',
        action: 'none',
        status: answer.status,
      });
    }
    return parsed.data;
  }

  private send(ctx: DeviceContext, spec: CallSpec, token: string): Promise<Exclude<PassAnswer, { kind: 'throttled' }>> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'ap-device-identifier': ctx.device.fingerprint,
      'x-device-info': encodeDeviceInfo(ctx.device.deviceInfo, ctx.client),
      'x-forwarded-for': ctx.client.ip,
      accept: ACCEPT_JSON,
    };
    if (ctx.tempPassIdentity !== undefined) headers['ap-temppass-identity'] = ctx.tempPassIdentity;
    if (ctx.client.visitor !== undefined && !withoutVisitorIdentifier.has(spec.operation)) headers['ap-visitor-identifier'] = ctx.client.visitor;
    const partnerFrameworkStatus = partnerFrameworkStatusOf(ctx);
    const ssoToken = ssoTokenOf(ctx);
    if (partnerFrameworkStatus !== undefined && withPartnerFrameworkStatus.has(spec.operation)) headers['ap-partner-framework-status'] = partnerFrameworkStatus;
    if (ssoToken !== undefined && withSsoToken.has(spec.operation)) headers[ssoToken.header] = ssoToken.value;
    if (spec.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (spec.json !== undefined) headers['content-type'] = 'application/json;charset=utf-8';
    return this.deps.transport.send(ctx.client.ip, { ...spec, headers, idempotent: spec.idempotent ?? spec.method === 'GET' });
  }
}

/**
 * AP-Visitor-Identifier (rest-api-v2-appendix-headers-ap-visitor-identifier.md) is listed on every
 * REST API V2 page passgate calls except GET configuration
 * (rest-api-v2-configuration-apis-retrieve-configuration-for-specific-service-provider.md); the
 * checklist asks for only the listed headers, although exp-cloud-id-authn.md says "on all APIs".
 */
const withoutVisitorIdentifier: ReadonlySet<string> = new Set(['configuration']);

/**
 * AP-Partner-Framework-Status is listed by the partner SSO pages, the profiles pages (but not
 * profiles/code) and the decisions pages; Adobe-Subject-Token and AD-Service-Token by sessions
 * create, the profiles pages (not profiles/code), the decisions pages and logout (adobe-pass.md §3.2).
 */
const withPartnerFrameworkStatus: ReadonlySet<string> = new Set(['sso.sessions', 'sso.profiles', 'profiles.all', 'profiles.mvpd', 'decisions.authorize', 'decisions.preauthorize']);
const withSsoToken: ReadonlySet<string> = new Set(['sessions.create', 'profiles.all', 'profiles.mvpd', 'decisions.authorize', 'decisions.preauthorize', 'logout']);

/** The call's own SSO credentials (an SSO sign-in), else those the app sent on this /v1 request (http/sso-credentials.ts). */
const partnerFrameworkStatusOf = (ctx: DeviceContext) => ctx.partnerFrameworkStatus ?? ctx.client.sso?.partnerFrameworkStatus;
const ssoTokenOf = (ctx: DeviceContext): SsoToken | undefined => ctx.ssoToken ?? ctx.client.sso?.token;

const ssoTokenKey = (token: SsoToken | undefined) => token && `${token.header}:${token.value}`;

const digestOf = (value: string | undefined) => (value === undefined ? '' : createHash('sha256').update(value).digest('base64url'));

function sessionForm(params: SessionParams): Record<string, string> {
  const form: Record<string, string> = {};
  for (const name of ['mvpd', 'domainName', 'redirectUrl'] as const) {
    const value = params[name];
    if (value !== undefined && value !== '') form[name] = value;
  }
  return form;
}
