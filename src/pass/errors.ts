import { Problem, type ProblemCode } from '../http/problem.js';

/**
 * The one reader of upstream answers (adobe-pass.md §7.2: "one central handler for all APIs").
 * Every response of the Pass service and of DCR goes through `readAnswer`; per-item decision
 * errors (HTTP 200) through `readEnhancedError`; the mapping to a passgate Problem is `toProblem`.
 */

/** adobe-pass.md §7.1: an enhanced error, top-level or on a decision item. Unknown codes/actions are kept as given. */
export interface PassErrorInfo {
  code: string;
  /** The remediation the upstream recommends (§5 list); `none` when the body had none. */
  action: string;
  /** The error's own `status`, else the HTTP status of the answer (may differ, §7.1). */
  status: number;
  message?: string;
  details?: string;
  helpUrl?: string;
  trace?: string;
}

/**
 * What to do about an enhanced error, decided by `action` alone (§7.2):
 * - `retry`: retry that item (bounded; the caller decides how often);
 * - `reauthenticate`: the viewer must sign in again (`authentication`);
 * - `refresh-token`: the access token is bad; refresh it (`application-registration`);
 * - `none`: not retryable (`none`, `configuration`, `authorization`, and anything unknown).
 */
export type Remedy = 'retry' | 'reauthenticate' | 'refresh-token' | 'none';

export function remedyFor(info: Pick<PassErrorInfo, 'action'>): Remedy {
  switch (info.action) {
    case 'retry':
      return 'retry';
    case 'authentication':
      return 'reauthenticate';
    case 'application-registration':
      return 'refresh-token';
    default:
      return 'none';
  }
}

export const isRetryable = (info: Pick<PassErrorInfo, 'action'>): boolean => remedyFor(info) === 'retry';

/** One upstream answer, classified. Non-2xx answers are never thrown by the HTTP layer, they land here. */
export type PassAnswer =
  | { kind: 'ok'; status: number; body: unknown }
  /** A top-level enhanced error (§7.1), e.g. 400 invalid_parameter_mvpd, 401 invalid_access_token_*. */
  | { kind: 'enhanced'; status: number; error: PassErrorInfo }
  /** DCR's own RFC 7591 shape: 400 `{"error": "invalid_client"}` (§2.2, §2.3). */
  | { kind: 'dcr'; status: number; error: string; description?: string }
  /** The throttle's HTML 429 without Retry-After (§8); whatever its body. */
  | { kind: 'throttled'; status: 429 }
  /** Anything else: an HTML error page, an empty body, JSON of an unknown shape. */
  | { kind: 'unexpected'; status: number; contentType: string; excerpt: string };

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** A status as a number, also when sent as a string ("403"). */
function statusOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\d{3}$/.test(value)) return Number(value);
  return undefined;
}

/**
 * An enhanced error object, or undefined when `value` is not one (no usable `code`).
 * Tolerant (§7.1 "could add values"): missing fields are left out, unknown codes and actions kept.
 */
export function readEnhancedError(value: unknown, httpStatus: number): PassErrorInfo | undefined {
  if (!isObject(value)) return undefined;
  const code = text(value.code);
  if (code === undefined) return undefined;
  const info: PassErrorInfo = { code, action: text(value.action) ?? 'none', status: statusOf(value.status) ?? httpStatus };
  const message = text(value.message);
  const details = text(value.details);
  const helpUrl = text(value.helpUrl);
  const trace = text(value.trace);
  if (message !== undefined) info.message = message;
  if (details !== undefined) info.details = details;
  if (helpUrl !== undefined) info.helpUrl = helpUrl;
  if (trace !== undefined) info.trace = trace;
  return info;
}

function header(headers: RawAnswer['headers'], name: string): string {
  const value = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

/** A short, single-line excerpt of a body for logs (upstream error pages carry no secrets of ours). */
function excerptOf(body: unknown): string {
  const raw = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : body === undefined ? '' : JSON.stringify(body);
  return raw.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** Parses a JSON text body the HTTP layer could not (e.g. served as text/plain); else the text. */
function jsonOf(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  const trimmed = body.trim();
  if (!trimmed.startsWith('{')) return body;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return body;
  }
}

/** Classifies any upstream answer: success, enhanced error, DCR error, throttled, or unexpected. */
export function readAnswer(raw: RawAnswer): PassAnswer {
  const { status } = raw;
  if (status === 429) return { kind: 'throttled', status: 429 };
  const body = jsonOf(raw.body);
  if (status >= 200 && status < 300) return { kind: 'ok', status, body };
  const enhanced = readEnhancedError(body, status);
  if (enhanced) return { kind: 'enhanced', status, error: enhanced };
  if (isObject(body) && text(body.error) !== undefined) {
    const description = text(body.error_description);
    return { kind: 'dcr', status, error: body.error as string, ...(description ? { description } : {}) };
  }
  return { kind: 'unexpected', status, contentType: header(raw.headers, 'content-type'), excerpt: excerptOf(body) };
}

/** DCR errors that mean passgate's own registration settings are wrong (§2.2), not the request. */
export const misconfigurationCodes: ReadonlySet<string> = new Set([
  'invalid_software_statement',
  'unapproved_software_statement',
  'invalid_redirect_uri',
]);

/** The enhanced error (or a stand-in for other failures) an answer carries; undefined for success. */
export function errorInfoOf(answer: PassAnswer): PassErrorInfo | undefined {
  switch (answer.kind) {
    case 'ok':
      return undefined;
    case 'enhanced':
      return answer.error;
    case 'dcr':
      return {
        code: answer.error,
        // DCR has no actions; ours say what fixes it: the settings, or new client credentials.
        action: misconfigurationCodes.has(answer.error) ? 'configuration' : answer.error === 'invalid_client' ? 'application-registration' : 'none',
        status: answer.status,
        ...(answer.description ? { message: answer.description } : {}),
      };
    case 'throttled':
      return { code: 'too_many_requests', action: 'retry', status: 429 };
    case 'unexpected':
      return { code: 'unexpected_response', action: 'none', status: answer.status, message: `HTTP ${answer.status} ${answer.contentType || 'without a content type'}` };
  }
}

/**
 * A failed upstream call as a passgate Problem. `info` is the upstream's error (what features
 * inspect: code, action, remedy); `upstream` in the problem body carries code/action/message/details.
 */
export class UpstreamProblem extends Problem {
  constructor(
    code: ProblemCode,
    detail: string,
    readonly operation: string,
    readonly info: PassErrorInfo,
    headers?: Record<string, string>,
  ) {
    super(code, detail, {
      upstream: {
        code: info.code,
        action: info.action,
        ...(info.message !== undefined ? { message: info.message } : {}),
        ...(info.details !== undefined ? { details: info.details } : {}),
      },
      ...(headers ? { headers } : {}),
    });
    this.name = 'UpstreamProblem';
  }

  get remedy(): Remedy {
    return remedyFor(this.info);
  }
}

/**
 * The single mapping from a failed answer to the Problem the app sees:
 * - 429 → upstream_throttled with Retry-After (≥ 1 s, §8);
 * - DCR settings errors and `configuration` actions → upstream_misconfigured;
 * - `retry` actions, 5xx and unexpected 5xx pages → upstream_unavailable (Retry-After 1);
 * - everything else (4xx, `authentication`, `none`, unknown) → upstream_rejected.
 */
export function toProblem(answer: Exclude<PassAnswer, { kind: 'ok' }>, operation: string, retryAfterSeconds = 1): UpstreamProblem {
  const info = errorInfoOf(answer) as PassErrorInfo;
  const retryAfter = { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) };
  if (answer.kind === 'throttled') {
    return new UpstreamProblem('upstream_throttled', `The Pass service throttled ${operation} for this device; retry later.`, operation, info, retryAfter);
  }
  if (info.action === 'configuration') {
    return new UpstreamProblem('upstream_misconfigured', `The Pass service refused ${operation}: ${info.code} (a configuration problem).`, operation, info);
  }
  if (info.action === 'retry' || answer.status >= 500) {
    return new UpstreamProblem('upstream_unavailable', `The Pass service failed ${operation}: ${info.code}.`, operation, info, retryAfter);
  }
  const appInput = appInputProblems[info.code];
  if (appInput && answer.status >= 400 && answer.status < 500) return new UpstreamProblem(appInput, `The Pass service refused ${operation}: ${info.code} (the request's own value).`, operation, info);
  return new UpstreamProblem('upstream_rejected', `The Pass service rejected ${operation}: ${info.code}.`, operation, info);
}

/**
 * Upstream 400s about a value the app itself sent (an MVPD id, the resources, the TempPass identity) are the app's bad
 * input, a 400 like passgate's own validation, not a 502 (adobe-pass.md §7.1, §4.2).
 */
const appInputProblems: Partial<Record<string, ProblemCode>> = {
  invalid_parameter_mvpd: 'unknown_mvpd',
  invalid_integration: 'unknown_mvpd',
  invalid_parameter_resources: 'invalid_body',
  // The app's AP-TempPass-Identity header (missing or refused), wherever the upstream answers it.
  invalid_header_identity_for_temporary_access: 'invalid_temppass_identity',
};
