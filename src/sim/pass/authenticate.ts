import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { createHash, randomBytes } from 'node:crypto';
import type { SimMvpd } from '../rules.js';
import { CODE_PATTERN, type SimSession, type SimState } from '../state.js';
import { isAbsoluteHttpUrl } from './session-params.js';

/**
 * The browser side of authentication (adobe-pass.md §4.5): GET /api/v2/authenticate/{sp}/{code}
 * redirects to a fake MVPD login page; signing in there saves a `regular` profile and sends the
 * user agent to the session's redirectUrl. Everything here answers HTML, errors included.
 */

/** A page-level failure: rendered as HTML with this status, never as JSON. */
class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly explanation: string,
  ) {
    super(title);
  }
}

/** One opaque login transaction per visit: the MVPD page never sees the authentication code. */
interface LoginTransaction {
  code: string;
  serviceProvider: string;
  expiresAt: number;
}

export function authenticateRoutes(state: SimState): Router {
  const router = new Router();
  const transactions = new Map<string, LoginTransaction>();

  const openTransaction = (session: SimSession): string => {
    const now = state.now();
    for (const [id, tx] of transactions) if (tx.expiresAt <= now) transactions.delete(id);
    const id = randomBytes(24).toString('base64url');
    transactions.set(id, { code: session.code, serviceProvider: session.serviceProvider, expiresAt: session.notAfter });
    return id;
  };

  /** The live session behind a login transaction, for this MVPD. */
  const sessionOf = (transactionId: unknown, mvpdId: string | undefined): { session: SimSession; mvpd: SimMvpd; id: string } => {
    const id = typeof transactionId === 'string' ? transactionId : undefined;
    const tx = id ? transactions.get(id) : undefined;
    const session = tx ? state.liveSession(tx.code, tx.serviceProvider) : undefined;
    if (!id || !session) throw new PageError(400, 'Sign-in session expired', 'This sign-in link is unknown or has expired. Start again from your device.');
    const mvpd = mvpdId ? state.mvpd(mvpdId) : undefined;
    if (!mvpd || session.params.mvpd !== mvpd.id) throw new PageError(400, 'Wrong provider', 'This sign-in link belongs to another TV provider.');
    return { session, mvpd, id };
  };

  router.use(htmlErrors);

  router.get('authenticate', '/api/v2/authenticate/:serviceProvider/:code', (ctx: Context) => {
    const { serviceProvider, code } = ctx.params;
    if (!serviceProvider || !Object.hasOwn(state.rules.serviceProviders, serviceProvider)) {
      throw new PageError(400, 'Unknown service provider', 'The service provider in this link is not known.');
    }
    const session = code && CODE_PATTERN.test(code) ? state.liveSession(code, serviceProvider) : undefined;
    if (!session) throw new PageError(400, 'Invalid code', 'This authentication code is unknown, expired or was replaced by a newer one.');
    const { mvpd: mvpdId, domainName, redirectUrl } = session.params;
    if (!mvpdId || !domainName || !redirectUrl) {
      throw new PageError(400, 'Session incomplete', 'This authentication session still lacks parameters; resume it first.');
    }
    const mvpd = state.mvpd(mvpdId);
    if (!mvpd?.enabled) throw new PageError(400, 'Provider unavailable', 'The integration with this TV provider is disabled.');
    // TempPass and degraded access never go through an MVPD login (§10): their sessions answer `authorize`.
    if (mvpd.isTempPass) throw new PageError(400, 'No sign-in needed', 'This provider grants temporary access without signing in.');
    // §4.5: 302 "until reaching the MVPD login page"; absolute, on the host the browser used
    // (Koa 3's ctx.origin is the Origin request header, not this).
    ctx.redirect(`${ctx.protocol}://${ctx.host}/sim/mvpd/${encodeURIComponent(mvpd.id)}/login?session=${openTransaction(session)}`);
  });
  // §4.5: errors of the browser endpoint, 405 included, are text/html.
  router.all('authenticate.method', '/api/v2/authenticate/:serviceProvider/:code', methodNotAllowed('GET, HEAD'));

  router.get('mvpd.login.page', '/sim/mvpd/:mvpd/login', (ctx: Context) => {
    const { session, mvpd, id } = sessionOf(ctx.query.session, ctx.params.mvpd);
    sendPage(ctx, 200, loginPage(mvpd, id, session));
  });

  router.post('mvpd.login.submit', '/sim/mvpd/:mvpd/login', (ctx: Context) => {
    if (!ctx.is('application/x-www-form-urlencoded')) throw new PageError(400, 'Bad request', 'The sign-in form must be posted as a form.');
    const form = (typeof ctx.request.body === 'object' && ctx.request.body !== null ? ctx.request.body : {}) as Record<string, unknown>;
    const { session, mvpd, id } = sessionOf(form.session, ctx.params.mvpd);
    const username = typeof form.username === 'string' ? form.username.trim() : '';
    const password = typeof form.password === 'string' ? form.password : '';
    if (username === '' || password !== state.rules.loginPassword) {
      const message = username === '' ? 'Enter your username.' : 'The username or password is incorrect.';
      sendPage(ctx, 401, loginPage(mvpd, id, session, { username, message }));
      return;
    }
    const notBefore = state.now();
    const profile = state.saveProfile({
      clientId: session.clientId,
      deviceId: session.deviceId,
      serviceProvider: session.serviceProvider,
      mvpd: mvpd.id,
      notBefore,
      notAfter: notBefore + mvpd.authnTtlMs,
      issuer: mvpd.id,
      type: 'regular',
      attributes: {
        userID: { value: username, state: 'plain' },
        householdID: { value: Buffer.from(`hh-${username}`).toString('base64'), state: 'plain' },
        // user-metadata.md: zip is a list that "requires encryption"; stored as the MVPD gave it and
        // encrypted for the programmer's certificate in each answer (./user-metadata.ts).
        zip: { value: [demoZip(username)], state: 'enc' },
      },
      userId: username,
    });
    session.profileKey = profile.key;
    transactions.delete(id);
    // §4.5: after the MVPD login the user agent reaches redirectUrl.
    ctx.redirect(session.params.redirectUrl ?? '/');
  });
  router.all('mvpd.login.method', '/sim/mvpd/:mvpd/login', methodNotAllowed('GET, HEAD, POST'));

  router.get('mvpd.logout', '/sim/mvpd/:mvpd/logout', (ctx: Context) => {
    const target = ctx.query.redirect_url;
    if (!ctx.params.mvpd || !state.mvpd(ctx.params.mvpd)) throw new PageError(400, 'Unknown provider', 'This TV provider is not known.');
    if (typeof target !== 'string' || !isAbsoluteHttpUrl(target)) {
      throw new PageError(400, 'Bad redirect', 'redirect_url must be one absolute http(s) URL.');
    }
    ctx.redirect(target);
  });
  router.all('mvpd.logout.method', '/sim/mvpd/:mvpd/logout', methodNotAllowed('GET, HEAD'));

  return router;
}

/** Turns any failure of these routes into an HTML page (never JSON, never a stack trace). */
async function htmlErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (error) {
    const page =
      error instanceof PageError ? error : new PageError(500, 'Something went wrong', 'The simulator failed to handle this page.');
    sendPage(ctx, page.status, messagePage(page.title, page.explanation));
  }
}

function methodNotAllowed(allow: string) {
  return (ctx: Context) => {
    ctx.set('Allow', allow);
    sendPage(ctx, 405, messagePage('Method not allowed', `This page answers ${allow} only.`));
  };
}

function sendPage(ctx: Context, status: number, html: string): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  // No form-action directive: the login form's answer redirects to the programmer's redirectUrl.
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  ctx.body = html;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const style =
  'body{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem}label{display:block;margin-top:1rem}' +
  'input{display:block;width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}' +
  '[role=alert]{color:#a00}';

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function messagePage(title: string, explanation: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(explanation)}</p>`);
}

function loginPage(mvpd: SimMvpd, transactionId: string, session: SimSession, failed?: { username: string; message: string }): string {
  const invalid = failed ? ' aria-invalid="true" aria-describedby="login-error"' : '';
  return layout(
    `Sign in to ${mvpd.displayName}`,
    `<h1>Sign in to ${escapeHtml(mvpd.displayName)}</h1>
<p>to watch on ${escapeHtml(session.serviceProvider)}</p>
${failed ? `<p role="alert" id="login-error">${escapeHtml(failed.message)}</p>\n` : ''}<form method="post" action="/sim/mvpd/${escapeHtml(encodeURIComponent(mvpd.id))}/login">
<input type="hidden" name="session" value="${escapeHtml(transactionId)}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" required autofocus value="${escapeHtml(failed?.username ?? '')}"${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${invalid}>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** A five-digit zip code the demo MVPD keeps for a user (the same one every sign-in). */
export function demoZip(username: string): string {
  return String(createHash('sha256').update(`zip:${username}`).digest().readUInt32BE(0) % 100_000).padStart(5, '0');
}
