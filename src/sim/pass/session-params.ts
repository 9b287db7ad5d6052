import type { SimState } from '../state.js';
import { PassError } from './errors.js';
import { requireMvpd } from './lookup.js';

/** The three form parameters of sessions create/resume (adobe-pass.md §4.2). */
export interface SessionParams {
  mvpd?: string;
  domainName?: string;
  redirectUrl?: string;
}

const sessionFields = ['mvpd', 'domainName', 'redirectUrl'] as const;

/**
 * Reads the form body. An empty value counts as not given (the resume flow fills it later);
 * a repeated parameter or one the API does not define is a malformed request (checklist: send
 * "only REST API v2 expected parameters", otherwise a 400).
 */
export function readSessionForm(body: unknown): SessionParams {
  return readForm(body, sessionFields);
}

/** The form parameters one endpoint defines, read by the rules of readSessionForm. */
export function readForm<K extends string>(body: unknown, fields: readonly K[]): Partial<Record<K, string>> {
  const form = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const unexpected = Object.keys(form).filter((name) => !(fields as readonly string[]).includes(name));
  if (unexpected.length > 0) throw new PassError('invalid_request', `unexpected parameter(s): ${unexpected.join(', ')}`);
  const params: Partial<Record<K, string>> = {};
  for (const name of fields) {
    const value = form[name];
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string') throw new PassError('invalid_request', `parameter ${name} is repeated or not a string`);
    params[name] = value;
  }
  return params;
}

export function isAbsoluteHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Checks every given parameter; absent ones are the resume flow's business, not an error. */
export function validateSessionParams(state: SimState, serviceProvider: string, params: SessionParams): void {
  if (params.mvpd !== undefined) requireMvpd(state, params.mvpd);
  if (params.redirectUrl !== undefined && !isAbsoluteHttpUrl(params.redirectUrl)) {
    throw new PassError('invalid_parameter_redirect_url');
  }
  if (params.domainName !== undefined) {
    const domains = state.rules.serviceProviders[serviceProvider]?.domains ?? [];
    // No documented code for a foreign domain: the domains belong to the service provider's
    // registration (configuration `requestor.domains`, §4.1), so the pair is what is invalid.
    if (!domains.some((domain) => domain.name.toLowerCase() === params.domainName?.toLowerCase())) {
      throw new PassError('invalid_parameter_service_provider', `domainName ${params.domainName} is not a domain of ${serviceProvider}`);
    }
  }
}

/**
 * The names of the parameters still missing, in the order of the sample.
 * adobe-pass.md §12.4: the samples call domainName `domain` in missingParameters.
 */
export function missingParameters(params: SessionParams): string[] {
  const missing: string[] = [];
  if (params.mvpd === undefined) missing.push('mvpd');
  if (params.domainName === undefined) missing.push('domain');
  if (params.redirectUrl === undefined) missing.push('redirectUrl');
  return missing;
}
