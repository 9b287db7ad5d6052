import Router from '@koa/router';
import type { Context } from 'koa';
import { createHmac, createPublicKey, randomBytes, randomUUID, timingSafeEqual, verify } from 'node:crypto';
import type { SimMvpd } from '../rules.js';
import { digest, profileKey, type ProfileType, type SimProfile, type SimSession, type SimState } from '../state.js';
import { PassError, type EnhancedCode } from './errors.js';
import { passState, requireHeaders, type PassState } from './headers.js';
import { requireServiceProvider, sessionTime } from './lookup.js';
import { profileBody } from './profiles.js';
import { decideSession, saveDegradedProfile, type SessionOwner } from './session-outcome.js';
import { isAbsoluteHttpUrl, missingParameters, readForm } from './session-params.js';

/**
 * Single sign-on as the REST API V2 documents it:
 * - partner SSO (Apple): POST sessions/sso/{partner} and profiles/sso/{partner}
 *   (rest-api-v2-partner-single-sign-on-apis-retrieve-partner-authentication-request.md,
 *   …-retrieve-profile-using-partner-authentication-response.md, rest-api-v2-single-sign-on-partner-flows.md),
 *   with the AP-Partner-Framework-Status header (rest-api-v2-appendix-headers-ap-partner-framework-status.md);
 * - platform identity (Adobe-Subject-Token) and service token (AD-Service-Token) SSO
 *   (rest-api-v2-single-sign-on-platform-identity-flows.md, …-service-token-flows.md): the first app
 *   signs in as usual sending the token; another app sending the same token finds an SSO profile.
 * Also the stand-in for the partner framework itself (Apple's Video Subscriber Account framework and
 * the MVPD login behind it): POST /sim/partner/{partner}/saml turns a SAML request into a response.
 */

// ---------------------------------------------------------------------------------------------
// AP-Partner-Framework-Status

export type PfsCode = Extract<EnhancedCode, `invalid_header_pfs_${string}`>;

export type FrameworkStatus =
  | { valid: true; mvpd: SimMvpd; expiresAt: number }
  /** `mvpd`: the MVPD the provider id names, when it names one (the fallback session carries it). */
  | { valid: false; code: PfsCode; mvpd?: SimMvpd };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function decodeJsonObject(value: string): Record<string, unknown> | undefined {
  const text = value.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The MVPD a partner framework's provider id names: its platformMappingId, else its id. */
const mvpdByMappingId = (state: SimState, id: string): SimMvpd | undefined => state.rules.mvpds.find((m) => (m.platformMappingId ?? m.id) === id);

/**
 * Reads the header as the header page defines it (base64 JSON; accessStatus, provider id and
 * expirationDate required) and names the first failing check with its enhanced code: no usable
 * accessStatus → not_present; notDetermined → not_determined; denied/restricted → not_granted;
 * an id that maps to no MVPD → provider_id_not_determined; a missing, malformed or past
 * expirationDate (epoch ms as a string) → provider_info_expired.
 */
export function readFrameworkStatus(state: SimState, header: string | undefined): FrameworkStatus {
  const status = header ? decodeJsonObject(header) : undefined;
  const permission = status?.frameworkPermissionInfo;
  const access = isObject(permission) ? permission.accessStatus : undefined;
  if (access !== 'granted' && access !== 'denied' && access !== 'restricted' && access !== 'notDetermined') {
    return { valid: false, code: 'invalid_header_pfs_permission_access_not_present' };
  }
  const provider = isObject(status?.frameworkProviderInfo) ? status.frameworkProviderInfo : {};
  const mvpd = typeof provider.id === 'string' ? mvpdByMappingId(state, provider.id) : undefined;
  const withMvpd = mvpd ? { mvpd } : {};
  if (access === 'notDetermined') return { valid: false, code: 'invalid_header_pfs_permission_access_not_determined', ...withMvpd };
  if (access !== 'granted') return { valid: false, code: 'invalid_header_pfs_permission_access_not_granted', ...withMvpd };
  if (!mvpd) return { valid: false, code: 'invalid_header_pfs_provider_id_not_determined' };
  const expiration = provider.expirationDate;
  const expiresAt = typeof expiration === 'string' && /^\d{1,16}$/.test(expiration) ? Number(expiration) : undefined;
  if (expiresAt === undefined || expiresAt <= state.now()) return { valid: false, code: 'invalid_header_pfs_provider_info_expired', mvpd };
  return { valid: true, mvpd, expiresAt };
}

const frameworkStatusOf = (state: SimState, ctx: Context) => readFrameworkStatus(state, ctx.get('ap-partner-framework-status') || undefined);

// ---------------------------------------------------------------------------------------------
// Partner configuration and the SAML exchange with the partner framework

function requirePartner(state: SimState, partner: string | undefined) {
  const settings = partner === undefined ? undefined : state.rules.sso.partners[partner];
  if (!partner || !settings || !Object.hasOwn(state.rules.sso.partners, partner)) throw new PassError('invalid_parameter_partner');
  return { name: partner, ...settings };
}

/** Partner SSO is "valid and enabled" for this MVPD on the backend (else configuration_fallback). */
const partnerServes = (partner: ReturnType<typeof requirePartner>, mvpd: SimMvpd | undefined) =>
  partner.enabled && (mvpd === undefined || partner.mvpds === undefined || partner.mvpds.includes(mvpd.id));

/** Sessions Partner sample 1: the SAML attributes asked of the partner framework. */
const ATTRIBUTE_NAMES = ['uid', 'NameID', 'uniqueId'];
const SAML_ISSUER = 'https://saml.sp.auth.adobe.com';

interface PartnerRequest extends SessionOwner {
  partner: string;
  mvpd: string;
  expiresAt: number;
}

/** Per simulator: the SAML requests handed out (by request ID) and the key the stand-in signs responses with. */
interface PartnerMemory {
  requests: Map<string, PartnerRequest>;
  signingKey: Buffer;
}
const memories = new WeakMap<SimState, PartnerMemory>();
function memoryOf(state: SimState): PartnerMemory {
  let memory = memories.get(state);
  if (!memory) {
    memory = { requests: new Map(), signingKey: randomBytes(32) };
    memories.set(state, memory);
  }
  return memory;
}

const xmlEscape = (value: string) => value.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
const xmlUnescape = (value: string) => value.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));

function issueSamlRequest(state: SimState, request: Omit<PartnerRequest, 'expiresAt'>): string {
  const memory = memoryOf(state);
  const id = `_${randomUUID()}`;
  for (const [key, old] of memory.requests) if (old.expiresAt <= state.now()) memory.requests.delete(key);
  memory.requests.set(id, { ...request, expiresAt: state.now() + state.rules.sessionTtlMs });
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="${id}" Version="2.0" ` +
    `IssueInstant="${new Date(state.now()).toISOString()}" Destination="${xmlEscape(request.mvpd)}"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${SAML_ISSUER}</saml:Issuer></samlp:AuthnRequest>`;
  return Buffer.from(xml).toString('base64');
}

const signatureOf = (state: SimState, fields: string[]) => createHmac('sha256', memoryOf(state).signingKey).update(fields.join('\u0000')).digest('base64');

/** The partner framework's answer after the viewer signed in with the MVPD: a SAML response to the request, signed (the simulator's stand-in signature). */
function samlResponseFor(state: SimState, requestXml: string, username: string): string | undefined {
  const id = /<samlp:AuthnRequest [^>]*ID="([^"]+)"/.exec(requestXml)?.[1];
  const request = id ? memoryOf(state).requests.get(id) : undefined;
  if (!id || !request) return undefined;
  const user = xmlEscape(username);
  const xml =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_${randomUUID()}" InResponseTo="${id}" Version="2.0">` +
    `<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${xmlEscape(request.mvpd)}</saml:Issuer>` +
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Subject><saml:NameID>${user}</saml:NameID></saml:Subject>` +
    `<saml:AttributeStatement>${ATTRIBUTE_NAMES.map((name) => `<saml:Attribute Name="${name}"><saml:AttributeValue>${user}</saml:AttributeValue></saml:Attribute>`).join('')}</saml:AttributeStatement></saml:Assertion>` +
    `<SignatureValue>${signatureOf(state, [id, username, request.mvpd])}</SignatureValue></samlp:Response>`;
  return Buffer.from(xml).toString('base64');
}

/** A SAMLResponse the stand-in issued for a request still pending (the caller consumes it on success); else undefined. */
function readSamlResponse(state: SimState, value: string): { id: string; request: PartnerRequest; username: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const xml = Buffer.from(value, 'base64').toString('utf8');
  const id = /InResponseTo="([^"]+)"/.exec(xml)?.[1];
  const nameId = /<saml:NameID>([^<]*)<\/saml:NameID>/.exec(xml)?.[1];
  const signature = /<SignatureValue>([^<]+)<\/SignatureValue>/.exec(xml)?.[1];
  const memory = memoryOf(state);
  const request = id ? memory.requests.get(id) : undefined;
  if (!id || nameId === undefined || !signature || !request || request.expiresAt <= state.now()) return undefined;
  const username = xmlUnescape(nameId);
  const expected = Buffer.from(signatureOf(state, [id, username, request.mvpd]));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  return { id, request, username };
}

// ---------------------------------------------------------------------------------------------
// Routes

const ownerOf = (ctx: Context, serviceProvider: string): SessionOwner & { pass: PassState } => {
  const pass = passState(ctx);
  return { clientId: pass.client.clientId, deviceId: pass.deviceId as string, serviceProvider, pass };
};

/**
 * Sessions Partner parameters "used in case of fallback": an invalid one counts as missing
 * (missing_parameters_fallback: "a missing or invalid parameter"), never an error of its own.
 */
function fallbackParams(state: SimState, serviceProvider: string, form: { domainName?: string; redirectUrl?: string }) {
  const domains = state.rules.serviceProviders[serviceProvider]?.domains ?? [];
  const domainName = form.domainName && domains.some((d) => d.name.toLowerCase() === form.domainName?.toLowerCase()) ? form.domainName : undefined;
  const redirectUrl = form.redirectUrl && isAbsoluteHttpUrl(form.redirectUrl) ? form.redirectUrl : undefined;
  return { ...(domainName ? { domainName } : {}), ...(redirectUrl ? { redirectUrl } : {}) };
}

type FallbackReason = 'pfs_fallback' | 'configuration_fallback' | 'missing_parameters_fallback';

/** Samples 3–5: the basic flow's session, `authenticate` when it has every parameter, else `resume`. */
function fallbackBody(session: SimSession, reasonType: FallbackReason) {
  const missing = missingParameters(session.params);
  const window = { notBefore: sessionTime(session.notBefore), notAfter: sessionTime(session.notAfter) };
  const common = { code: session.code, sessionId: session.sessionId, ...(session.params.mvpd ? { mvpd: session.params.mvpd } : {}), serviceProvider: session.serviceProvider, ...window };
  return missing.length > 0
    ? { actionName: 'resume', actionType: 'direct', reasonType, missingParameters: missing, url: `/api/v2/${session.serviceProvider}/sessions/${session.code}`, ...common }
    : { actionName: 'authenticate', actionType: 'interactive', reasonType, url: `/api/v2/authenticate/${session.serviceProvider}/${session.code}`, ...common };
}

const partnerHeaders = { authorization: true, deviceIdentifier: true, deviceInfo: true, contentType: 'form' } as const;

export function ssoRoutes(state: SimState): Router {
  const router = new Router();

  router.post('sso.sessions', '/api/v2/:serviceProvider/sessions/sso/:partner', requireHeaders(state, partnerHeaders), (ctx: Context) => {
    const serviceProvider = requireServiceProvider(state, ctx.params.serviceProvider);
    const partner = requirePartner(state, ctx.params.partner);
    const params = fallbackParams(state, serviceProvider, readForm(ctx.request.body, ['domainName', 'redirectUrl'] as const));
    const owner = ownerOf(ctx, serviceProvider);
    const pfs = frameworkStatusOf(state, ctx);
    const mvpd = pfs.mvpd;
    // "The integration between the provided serviceProvider and mvpd must be active": basic validation, an error.
    if (mvpd && !mvpd.enabled) throw new PassError('invalid_integration');
    if (mvpd) {
      // A valid profile (or a degradation rule) first: sample 2, and the flow's "Proceed with decisions flows".
      const outcome = decideSession(state, owner, { mvpd: mvpd.id });
      if (outcome.kind === 'authorize') {
        ctx.body = {
          actionName: 'authorize',
          actionType: 'direct',
          reasonType: outcome.reasonType,
          url: `/api/v2/${serviceProvider}/decisions/authorize/${outcome.mvpd}`,
          sessionId: randomUUID(),
          mvpd: outcome.mvpd,
          serviceProvider,
        };
        return;
      }
    }
    const reason: FallbackReason | undefined = !partnerServes(partner, mvpd)
      ? 'configuration_fallback'
      : !pfs.valid
        ? 'pfs_fallback'
        : missingParameters({ ...(mvpd ? { mvpd: mvpd.id } : {}), ...params }).length > 0
          ? 'missing_parameters_fallback'
          : undefined;
    if (reason || !pfs.valid) {
      const connectionIp = owner.pass.device.connectionIp ?? (ctx.get('x-forwarded-for').split(',')[0]?.trim() || undefined);
      const session = state.createSession({
        clientId: owner.clientId,
        deviceId: owner.deviceId,
        serviceProvider,
        device: { ...owner.pass.device, ...(connectionIp ? { connectionIp } : {}) },
        params: { ...(mvpd ? { mvpd: mvpd.id } : {}), ...params },
      });
      ctx.body = fallbackBody(session, reason ?? 'pfs_fallback');
      return;
    }
    const request = issueSamlRequest(state, { partner: partner.name, mvpd: pfs.mvpd.id, clientId: owner.clientId, deviceId: owner.deviceId, serviceProvider });
    ctx.body = {
      actionName: 'partner_profile',
      actionType: 'direct',
      reasonType: 'none',
      url: `/api/v2/${serviceProvider}/profiles/sso/${partner.name}`,
      sessionId: randomUUID(),
      mvpd: pfs.mvpd.id,
      serviceProvider,
      authenticationRequest: { type: 'saml', request, attributesNames: ATTRIBUTE_NAMES },
    };
  });

  router.post('sso.profiles', '/api/v2/:serviceProvider/profiles/sso/:partner', requireHeaders(state, partnerHeaders), (ctx: Context) => {
    const serviceProvider = requireServiceProvider(state, ctx.params.serviceProvider);
    const partner = requirePartner(state, ctx.params.partner);
    const { SAMLResponse: samlResponse } = readForm(ctx.request.body, ['SAMLResponse'] as const);
    if (samlResponse === undefined) throw new PassError('invalid_parameter_saml_response');
    const owner = ownerOf(ctx, serviceProvider);
    // The API page's error list: the header's checks are errors here, not fallbacks.
    const pfs = frameworkStatusOf(state, ctx);
    if (!pfs.valid) throw new PassError(pfs.code);
    if (!pfs.mvpd.enabled) throw new PassError('invalid_integration');
    // Sample 2: under a degradation rule the answer is the degraded profile (200).
    if (pfs.mvpd.degradation === 'AuthNAll') {
      ctx.body = { profiles: { [pfs.mvpd.id]: profileBody(saveDegradedProfile(state, owner, pfs.mvpd)) } };
      return;
    }
    // "If partner single sign-on validation fails, the response will default to the basic profile retrieval flow."
    if (!partnerServes(partner, pfs.mvpd)) {
      const status = state.profileStatus(profileKey(owner.clientId, owner.deviceId, serviceProvider, pfs.mvpd.id));
      ctx.body = { profiles: status.state === 'valid' ? { [pfs.mvpd.id]: profileBody(status.profile) } : {} };
      return;
    }
    const redeemed = readSamlResponse(state, samlResponse);
    const { request } = redeemed ?? {};
    if (!redeemed || !request || request.partner !== partner.name || request.clientId !== owner.clientId || request.deviceId !== owner.deviceId || request.serviceProvider !== serviceProvider) {
      throw new PassError('invalid_parameter_saml_response');
    }
    if (request.mvpd !== pfs.mvpd.id) throw new PassError('invalid_header_pfs_provider_id_mismatch');
    // Single use, like the SAML response it stands for.
    memoryOf(state).requests.delete(redeemed.id);
    const notBefore = state.now();
    const profile = state.saveProfile({
      clientId: owner.clientId,
      deviceId: owner.deviceId,
      serviceProvider,
      mvpd: pfs.mvpd.id,
      notBefore,
      // The partner's own sign-in ends at expirationDate; the profile does not outlive it.
      notAfter: Math.min(notBefore + pfs.mvpd.authnTtlMs, pfs.expiresAt),
      issuer: partner.name,
      type: 'appleSSO',
      // Profiles Partner sample 1 also has the MVPD's householdID (as the MVPD login page gives it).
      attributes: { ...ssoAttributes(redeemed.username, pfs.mvpd.id), householdID: { value: Buffer.from(`hh-${redeemed.username}`).toString('base64'), state: 'plain' } },
      userId: redeemed.username,
    });
    ctx.status = 201;
    ctx.body = { profiles: { [profile.mvpd]: profileBody(profile) } };
  });

  /**
   * The partner framework stand-in (not an upstream endpoint): what Apple's framework returns to the
   * app after the viewer signed in with the MVPD (same password rule as the MVPD login page).
   * JSON `{request, username, password}` → `{SAMLResponse}`: base64, as the app then sends it.
   */
  router.post('sim.partner.saml', '/sim/partner/:partner/saml', (ctx: Context) => {
    const body = isObject(ctx.request.body) ? ctx.request.body : {};
    const { request, username, password } = body;
    if (typeof request !== 'string' || typeof username !== 'string' || username === '' || typeof password !== 'string') {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', message: 'expected JSON {request, username, password}' };
      return;
    }
    if (password !== state.rules.loginPassword) {
      ctx.status = 401;
      ctx.body = { error: 'login_failed', message: 'wrong password for this TV provider' };
      return;
    }
    const response = /^[A-Za-z0-9+/]+={0,2}$/.test(request) ? samlResponseFor(state, Buffer.from(request, 'base64').toString('utf8'), username) : undefined;
    if (!response) {
      ctx.status = 400;
      ctx.body = { error: 'unknown_request', message: 'not a SAML request this simulator issued, or it expired' };
      return;
    }
    ctx.body = { SAMLResponse: response };
  });

  return router;
}

/** SSO profiles' attributes: the user, the MVPD's own id of the user, and the MVPD (adobe-pass.md §4.6). */
function ssoAttributes(userId: string, mvpd: string): SimProfile['attributes'] {
  return { userID: { value: userId, state: 'plain' }, upstreamUserID: { value: userId, state: 'plain' }, mvpd: { value: mvpd, state: 'plain' } };
}

// ---------------------------------------------------------------------------------------------
// Platform identity (Adobe-Subject-Token) and service token (AD-Service-Token)

interface SsoIdentity {
  type: Extract<ProfileType, 'platformSSO' | 'serviceTokenSSO'>;
  id: string;
}

const base64urlJson = (segment: string | undefined): Record<string, unknown> | undefined => {
  if (!segment || !/^[A-Za-z0-9_-]+$/.test(segment)) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
};

/**
 * rest-api-v2-appendix-headers-ad-service-token.md: a JWS signed SHA256withRSA with a key whose public
 * half was handed to Adobe; claims iss, sub (the user), aud ("Adobe"; the sample writes "adobe"), iat, exp.
 */
function verifyServiceToken(token: string, keys: readonly string[], nowSeconds: number): { iss: string; sub: string } | undefined {
  const [head, body, signature, ...rest] = token.split('.');
  if (rest.length > 0 || !signature || base64urlJson(head)?.alg !== 'RS256') return undefined;
  const claims = base64urlJson(body);
  const signed = Buffer.from(`${head}.${body}`);
  const sig = Buffer.from(signature, 'base64url');
  const trusted = keys.some((pem) => {
    try {
      return verify('sha256', signed, createPublicKey(pem), sig);
    } catch {
      return false;
    }
  });
  if (!trusted || !claims) return undefined;
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.some((aud) => typeof aud === 'string' && aud.toLowerCase() === 'adobe')) return undefined;
  if (typeof claims.exp !== 'number' || claims.exp <= nowSeconds) return undefined;
  if (typeof claims.sub !== 'string' || claims.sub === '') return undefined;
  return { iss: typeof claims.iss === 'string' ? claims.iss : '', sub: claims.sub };
}

/**
 * The SSO identity a request proves, if any. The docs define no error for an untrusted token, so
 * one is simply no identity (the request goes on as without it). The platform identity comes in
 * Adobe-Subject-Token or, on Roku, X-Roku-Reserved-Roku-Connect-Token: the request tables list them
 * as one row ("Adobe-Subject-Token or X-Roku-Reserved-Roku-Connect-Token",
 * rest-api-v2-appendix-headers-x-roku-reserved-roku-connect-token.md: "the unique platform
 * identifier … for the Platform Identity method"), so both name the same identity.
 */
function ssoIdentity(state: SimState, ctx: Context): SsoIdentity | undefined {
  for (const header of ['adobe-subject-token', 'x-roku-reserved-roku-connect-token']) {
    const subject = ctx.get(header);
    if (subject && state.rules.sso.platformTokens.includes(subject)) return { type: 'platformSSO', id: `platform:${digest(subject)}` };
  }
  const service = ctx.get('ad-service-token');
  const claims = service ? verifyServiceToken(service, state.rules.sso.serviceTokenKeys, Math.floor(state.now() / 1000)) : undefined;
  return claims ? { type: 'serviceTokenSSO', id: `service:${claims.iss}\u0000${claims.sub}` } : undefined;
}

/** Per simulator: SSO identity → the applications (client, device, service provider) that sent it. */
const links = new WeakMap<SimState, Map<string, Map<string, SessionOwner>>>();

function linkOwner(state: SimState, identity: SsoIdentity, owner: SessionOwner): Map<string, SessionOwner> {
  let byIdentity = links.get(state);
  if (!byIdentity) links.set(state, (byIdentity = new Map()));
  let owners = byIdentity.get(identity.id);
  if (!owners) byIdentity.set(identity.id, (owners = new Map()));
  owners.set([owner.clientId, owner.deviceId, owner.serviceProvider].join('\u0000'), { clientId: owner.clientId, deviceId: owner.deviceId, serviceProvider: owner.serviceProvider });
  return owners;
}

/**
 * Single logout (rest-api-v2-single-sign-on-logout-flow.md, "Find regular and single sign-on
 * profiles"): the other applications (same service provider) linked to the SSO identity the request
 * proves, whose profiles a logout carrying the token deletes too; none without a trusted token.
 */
export function ssoLinkedOwners(state: SimState, ctx: Context, owner: SessionOwner): SessionOwner[] {
  const identity = ssoIdentity(state, ctx);
  return identity ? linkedOthers(state, identity, owner) : [];
}

/** Links the owner to the identity; returns the identity's other applications of the owner's service provider. */
function linkedOthers(state: SimState, identity: SsoIdentity, owner: SessionOwner): SessionOwner[] {
  const owners = linkOwner(state, identity, owner);
  return [...owners.values()].filter((other) => other.serviceProvider === owner.serviceProvider && !(other.clientId === owner.clientId && other.deviceId === owner.deviceId));
}

/** Sessions create with a token: the application is linked to the identity its sign-in will serve. */
export function noteSsoCaller(state: SimState, ctx: Context, owner: SessionOwner): void {
  const identity = ssoIdentity(state, ctx);
  if (identity) linkOwner(state, identity, owner);
}

/**
 * Profiles calls with a token: the regular profiles of the other applications linked to the same
 * identity become this application's SSO profiles (issuer: the MVPD; the first sign-in's notAfter,
 * as the Roku cookbook says later apps share the first authentication's TTL). They are saved
 * under this application's key, so its decisions and logout find them like any profile.
 */
export function shareSsoProfiles(state: SimState, ctx: Context, owner: SessionOwner, mvpd?: string): void {
  const identity = ssoIdentity(state, ctx);
  if (!identity) return;
  for (const other of linkedOthers(state, identity, owner)) {
    for (const profile of state.validProfiles(other.clientId, other.deviceId, other.serviceProvider)) {
      if (profile.type !== 'regular' || (mvpd !== undefined && profile.mvpd !== mvpd)) continue;
      if (state.profileStatus(profileKey(owner.clientId, owner.deviceId, owner.serviceProvider, profile.mvpd)).state === 'valid') continue;
      state.saveProfile({
        ...owner,
        mvpd: profile.mvpd,
        notBefore: state.now(),
        notAfter: profile.notAfter,
        issuer: profile.mvpd,
        type: identity.type,
        attributes: ssoAttributes(profile.userId, profile.mvpd),
        userId: profile.userId,
      });
    }
  }
}
