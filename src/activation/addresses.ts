/**
 * The second screen's address as viewers type it. A TV shows "go to <host>/activate"; people type
 * `/Activate`, `/ACTIVATE/` or `//activate`, and browsers keep what they typed. The routes stay
 * strict (SPEC §8: a route exists under one spelling, every access rule is on the route that
 * matched), so another spelling is never served: a GET for the code page under any spelling is
 * sent to the one real address, and every other stray request that names the pages gets an HTML
 * page (never the API's JSON problem).
 */

/** The code-entry page: the one address a viewer types. */
export const CODE_PAGE = '/activate';

/**
 * The path a raw request path names, spelled one way: percent-decoded, lower case, empty and `.`
 * segments dropped, `..` resolved, no trailing slash. Undefined when it does not decode or holds a
 * control character or a backslash (nothing to be forgiving about).
 */
export function namedPath(rawPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f\\]/.test(decoded)) return undefined;
  const segments: string[] = [];
  for (const segment of decoded.toLowerCase().split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join('/')}`;
}

/** Whether a raw path names the second-screen pages (the code page or anything under it). */
export function namesActivationPages(rawPath: string): boolean {
  const named = namedPath(rawPath);
  return named !== undefined && (named === CODE_PAGE || named.startsWith(`${CODE_PAGE}/`));
}

/**
 * Where a GET under another spelling of the code page goes: the real address, with the query
 * (`?code=` from a QR code) when it is plain URL text. Undefined when the path names something else.
 */
export function codePageLocation(rawPath: string, querystring: string): string | undefined {
  if (namedPath(rawPath) !== CODE_PAGE) return undefined;
  return querystring !== '' && /^[\w.~%=&+-]*$/.test(querystring) ? `${CODE_PAGE}?${querystring}` : CODE_PAGE;
}
