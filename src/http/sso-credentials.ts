import { frameworkStatusSchema, encodeFrameworkStatus, MAX_SSO_HEADER_LENGTH, rokuTokenSchema, serviceTokenSchema, subjectTokenSchema } from '../pass/index.js';
import type { AppContext, AppMiddleware } from './context.js';
import type { SsoCredentials } from './client-address.js';
import { Problem } from './problem.js';

/** The SSO headers an app sends passgate, spelled as the upstream spells them (README "Single sign-on"). */
export const PARTNER_FRAMEWORK_STATUS_HEADER = 'ap-partner-framework-status';
export const SUBJECT_TOKEN_HEADER = 'adobe-subject-token';
export const SERVICE_TOKEN_HEADER = 'ad-service-token';
export const ROKU_TOKEN_HEADER = 'x-roku-reserved-roku-connect-token';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * An app signed in by single sign-on keeps proving it on the calls that read profiles or ask for
 * decisions: the upstream lists AP-Partner-Framework-Status on the profiles and decisions pages, and
 * Adobe-Subject-Token (on Roku X-Roku-Reserved-Roku-Connect-Token) / AD-Service-Token on those and logout (an appleSSO or platformSSO profile is
 * found only with them). On the /v1 routes that make those calls, the app sends the same headers;
 * each is checked (a malformed one is 400 invalid_sso_header, and nothing is called upstream), the
 * status re-encoded from its checked JSON, and the request's upstream calls carry them.
 * The values never appear in an answer or a log line.
 */
export const ssoCredentials: AppMiddleware = async (ctx, next) => {
  const credentials = readSsoCredentials(ctx);
  if (credentials !== undefined) ctx.state.client = { ...ctx.state.client, sso: credentials };
  await next();
};

function readSsoCredentials(ctx: AppContext): SsoCredentials | undefined {
  const status = header(ctx, PARTNER_FRAMEWORK_STATUS_HEADER);
  const subject = header(ctx, SUBJECT_TOKEN_HEADER);
  const service = header(ctx, SERVICE_TOKEN_HEADER);
  const roku = header(ctx, ROKU_TOKEN_HEADER);
  if (status === undefined && subject === undefined && service === undefined && roku === undefined) return undefined;
  if ([subject, service, roku].filter((token) => token !== undefined).length > 1) {
    throw invalid('Send at most one of Adobe-Subject-Token, X-Roku-Reserved-Roku-Connect-Token and AD-Service-Token.');
  }
  const credentials: SsoCredentials = {};
  if (status !== undefined) credentials.partnerFrameworkStatus = encodeFrameworkStatus(partnerStatus(status));
  if (subject !== undefined) {
    if (!subjectTokenSchema.safeParse(subject).success) throw invalid('Adobe-Subject-Token must be the platform identity token, a compact JWS or JWE.');
    credentials.token = { header: SUBJECT_TOKEN_HEADER, value: subject };
  }
  if (roku !== undefined) {
    if (!rokuTokenSchema.safeParse(roku).success) throw invalid('X-Roku-Reserved-Roku-Connect-Token must be one value of visible ASCII characters without spaces.');
    credentials.token = { header: ROKU_TOKEN_HEADER, value: roku };
  }
  if (service !== undefined) {
    if (!serviceTokenSchema.safeParse(service).success) throw invalid('AD-Service-Token must be the service token, a compact JWS.');
    credentials.token = { header: SERVICE_TOKEN_HEADER, value: service };
  }
  return credentials;
}

/** One header value, or undefined when absent or empty. */
function header(ctx: AppContext, name: string): string | undefined {
  const value = ctx.get(name);
  return value === '' ? undefined : value;
}

/** AP-Partner-Framework-Status: Base64 of the framework status JSON, as the partner SSO pages define it. */
function partnerStatus(raw: string) {
  const wrong = () => invalid('AP-Partner-Framework-Status must be Base64 of the partner framework status JSON (frameworkPermissionInfo, frameworkProviderInfo).');
  if (raw.length > MAX_SSO_HEADER_LENGTH || !BASE64.test(raw)) throw wrong();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
  } catch {
    throw wrong();
  }
  const parsed = frameworkStatusSchema.safeParse(json);
  if (!parsed.success) throw wrong();
  return parsed.data;
}

const invalid = (detail: string) => new Problem('invalid_sso_header', detail);
