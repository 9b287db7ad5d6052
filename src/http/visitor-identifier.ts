import { Problem } from './problem.js';
import type { AppMiddleware } from './context.js';

/** The request header an app names its Experience Cloud visitor (ECID) with, as the upstream spells it. */
export const VISITOR_IDENTIFIER_HEADER = 'ap-visitor-identifier';

/**
 * The upstream page (rest-api-v2-appendix-headers-ap-visitor-identifier.md) fixes no syntax beyond
 * `AP-Visitor-Identifier: <visitor_identifier>`: an ECID (38 digits from the ID service) or the
 * programmer's own visitor id (exp-cloud-id-authn.md). passgate therefore checks only what it can
 * forward safely: one header value of visible ASCII (the doc's quoted example included), no
 * whitespace — so a repeated header, which Node joins with ", ", is refused too — at most 256 characters.
 */
export const MAX_VISITOR_IDENTIFIER_LENGTH = 256;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** The app's AP-Visitor-Identifier, or undefined when absent (or empty); a malformed one is 400 invalid_visitor_identifier. */
export function readVisitorIdentifier(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > MAX_VISITOR_IDENTIFIER_LENGTH || !VISIBLE_ASCII.test(raw)) {
    // The value itself never appears in the answer (nor in a log line).
    throw new Problem(
      'invalid_visitor_identifier',
      `AP-Visitor-Identifier must be one visitor id (e.g. the ECID) of 1 to ${MAX_VISITOR_IDENTIFIER_LENGTH} visible ASCII characters, without spaces, sent once.`,
    );
  }
  return raw;
}

/**
 * On the streaming-app routes that call the upstream (after requireDevice): a valid AP-Visitor-Identifier
 * joins the request's ClientAddress, which every upstream call for this request (and the sign-in polls
 * started by it) carries; the Pass client forwards it where the docs list the header.
 */
export const visitorIdentifier: AppMiddleware = async (ctx, next) => {
  const visitor = readVisitorIdentifier(ctx.get(VISITOR_IDENTIFIER_HEADER) || undefined);
  if (visitor !== undefined) ctx.state.client = { ...ctx.state.client, visitor };
  await next();
};
