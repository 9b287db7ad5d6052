import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import { routeTable } from '../http/route-table.js';
import { bodyProblem, readBodyWith } from '../http/body.js';
import type { AppContext, AppState } from '../http/context.js';
import { Problem } from '../http/problem.js';
import { STORE_RETRY_AFTER } from '../http/store-call.js';
import type { AppMiddleware } from '../http/context.js';
import { codePageLocation, namesActivationPages } from './addresses.js';
import { parseCode, normalizeCode } from './code.js';
import type { FormGuard } from './form-guard.js';
import type { AttemptLimiter } from './limiter.js';
import type { ActivationMetrics, AttemptResult } from './metrics.js';
import type { ActivationService } from './service.js';
import { continueScript, messages, type ActivationViews, type CodeFormOptions, type Page } from './views.js';

export interface ActivationRouteDeps {
  service: ActivationService;
  guard: FormGuard;
  limiter: AttemptLimiter;
  metrics: ActivationMetrics;
  views: ActivationViews;
  /** Whether viewers reach passgate over https (the cookie is then Secure and `__Host-`). */
  secure: () => boolean;
  /**
   * Marks a (verified) continue ticket used, fleet-wide; false when it was used before. A continue
   * ticket is single use: the one 303 to the upstream it stands for, then never again.
   */
  spendTicket: (ticket: string) => Promise<boolean>;
}

/**
 * No script but the "one moment" page's /activate/continue.js (`script` pages only); styles only
 * from /activate/style.css; never framed. Images: this origin, plus exactly the origins of the
 * images the page shows (the brand logo, the MVPD logos).
 */
function contentSecurityPolicy(page: Pick<Page, 'images' | 'script'> = {}): string {
  const origins = [...new Set((page.images ?? []).map((url) => new URL(url).origin))];
  const script = page.script ? " script-src 'self';" : '';
  return `default-src 'none';${script} style-src 'self'; img-src ${["'self'", ...origins].join(' ')}; base-uri 'none'; frame-ancestors 'none'`;
}

/** How long the done page can tell which code this browser sent on to the MVPD (an upstream session lasts 30 min). */
const DONE_MARK_MS = 30 * 60_000;

/** Second-screen pages (SPEC §3). Every answer is HTML, errors included; nothing here answers 5xx for bad input. */
export function activationRoutes(deps: ActivationRouteDeps): Router<AppState> {
  const { service, guard, limiter, metrics, views } = deps;
  const { codeFormPage, donePage, messagePage, oneMomentPage, pickerPage } = views;
  const router = routeTable();
  const cookieName = () => (deps.secure() ? '__Host-passgate-activation' : 'passgate-activation');

  /** The browser's CSRF secret, issuing a fresh cookie when it brought none (or a foreign one). */
  const browserSecret = (ctx: AppContext): string => {
    const current = ctx.cookies.get(cookieName());
    if (guard.isSecret(current)) return current;
    const secret = guard.newSecret();
    const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', 'Max-Age=3600', ...(deps.secure() ? ['Secure'] : [])];
    ctx.append('Set-Cookie', `${cookieName()}=${secret}; ${attributes.join('; ')}`);
    return secret;
  };

  const count = (result: AttemptResult) => metrics.attempts.inc({ result });

  /**
   * The code this browser is sent on with, sealed: the done page reads it back. SameSite=Lax, not
   * Strict: the MVPD brings the browser back from another site, and Strict cookies stay behind then.
   */
  const doneCookieName = () => (deps.secure() ? '__Host-passgate-activation-done' : 'passgate-activation-done');
  const markDone = (ctx: AppContext, code: string) => {
    const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${DONE_MARK_MS / 1000}`, ...(deps.secure() ? ['Secure'] : [])];
    ctx.append('Set-Cookie', `${doneCookieName()}=${guard.seal('done', code, DONE_MARK_MS)}; ${attributes.join('; ')}`);
  };

  const codeForm = (ctx: AppContext, options: Omit<CodeFormOptions, 'csrf'> = {}) =>
    codeFormPage({ csrf: guard.token(browserSecret(ctx)), ...options });

  /**
   * Upstream or store trouble: an HTML page, logged, never a stack. `code`: the code being looked
   * up, when there is one. upstream_throttled is the viewer IP's own upstream bucket (passgate's
   * mirror, after waiting up to throttle.max_wait_ms, or the upstream's 429): the household's, for
   * a second or so, not the fleet-wide attempt limit, so the page says to retry in a moment, with
   * Retry-After, and keeps the code in the field.
   */
  const failure = (ctx: AppContext, err: unknown, code?: string): Page => {
    if (err instanceof Problem && err.code === 'upstream_throttled') {
      count('waiting');
      ctx.set('Retry-After', err.extra.headers?.['Retry-After'] ?? '1');
      return codeForm(ctx, { value: code ?? '', notice: messages.paced, status: 429 });
    }
    count('error');
    if (err instanceof Problem && err.status === 429) return messagePage(429, 'Please wait', messages.busy);
    ctx.state.log.warn({ err, code: err instanceof Problem ? err.code : undefined }, 'activation: upstream or store failure');
    // As every 503 of passgate: when to retry (the problem's own hint, else the store's).
    ctx.set('Retry-After', (err instanceof Problem ? err.extra.headers?.['Retry-After'] : undefined) ?? STORE_RETRY_AFTER);
    return messagePage(503, 'Try again shortly', messages.unavailable);
  };

  /** Every submission takes a token first, right or wrong; over a limit → 429 page. */
  const limited = async (ctx: AppContext): Promise<Page | undefined> => {
    const decision = await limiter.take(ctx.state.client.ip);
    if (decision.allowed) return undefined;
    count('limited');
    ctx.set('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
    ctx.state.log.info({ scope: decision.scope }, 'activation: attempt refused by the limiter');
    return messagePage(429, 'Too many attempts', decision.scope === 'ip' ? messages.limited : messages.busy);
  };

  /**
   * On to the upstream's authenticate URL once the viewer IP's mirrored throttle bucket gives a
   * token (ActivationService.admitBrowser); otherwise "one moment", which comes back to
   * /activate/continue with a ticket bound to this browser. `submission`: a form post, counted.
   */
  const toUpstream = async (ctx: AppContext, code: string, secret: string, submission: boolean): Promise<Page> => {
    const admission = await service.admitBrowser(ctx.state.client);
    if (submission) count(admission.admitted ? 'redirected' : 'waiting');
    if (!admission.admitted) {
      const continueUrl = `/activate/continue?${new URLSearchParams({ ticket: guard.ticket('continue', code, secret) }).toString()}`;
      return oneMomentPage({ continueUrl, afterMs: admission.retryAfterMs });
    }
    markDone(ctx, code);
    return redirect(ctx, service.authenticateUrl(code));
  };

  // app.ts leaves /activate bodies to us: a form only, small, and any parse failure an HTML page.
  const parseForm = readBodyWith(bodyParser({ enableTypes: ['form'], encoding: 'utf-8', formLimit: '16kb' }));
  router.use(['/activate', '/activate/mvpd'], async (ctx, next) => {
    if (ctx.method !== 'POST') return next();
    try {
      await parseForm(ctx, async () => {});
    } catch (err) {
      // The same classification as the JSON routes (bad gzip 400, unknown encoding 415, bomb 413), as a page.
      const status = bodyProblem(err)?.status ?? 400;
      count('error');
      return send(ctx, messagePage(status, status === 413 ? 'Too much data' : 'Something went wrong', messages.badRequest));
    }
    return next();
  });

  router.get('activation.style', '/activate/style.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = views.stylesheet;
  });

  router.get('activation.form', '/activate', (ctx) => {
    // ?code= (from the TV's QR code) only fills the field; nothing is looked up on a GET.
    const raw = typeof ctx.query.code === 'string' && ctx.query.code.length <= 64 ? normalizeCode(ctx.query.code) : '';
    const value = /^[A-Z0-9]{1,16}$/.test(raw) ? raw : '';
    send(ctx, codeForm(ctx, { value }));
  });

  router.post('activation.submit', '/activate', async (ctx) => {
    let page: Page;
    try {
      page = (await limited(ctx)) ?? (await submitCode(ctx));
    } catch (err) {
      page = failure(ctx, err, typedCode(formOf(ctx).code));
    }
    if (page.status !== 303) send(ctx, page);
  });

  const submitCode = async (ctx: AppContext): Promise<Page> => {
    const form = formOf(ctx);
    const secret = ctx.cookies.get(cookieName());
    if (!guard.verify(secret, form.csrf)) {
      count('csrf');
      return codeForm(ctx, { error: messages.csrf, status: 403 });
    }
    const typed = typeof form.code === 'string' ? form.code.slice(0, 64) : '';
    if (typedCode(typed) === '') {
      // Nothing typed: say what to do, not that a code was wrong (it still took a token above).
      count('wrong_code');
      return codeForm(ctx, { error: messages.emptyCode, status: 400 });
    }
    const code = typeof form.code === 'string' && form.code.length <= 64 ? parseCode(form.code) : undefined;
    // Malformed codes count (they took a token above) but never reach the upstream.
    const lookup = code ? await service.lookup(code, ctx.state.client) : { kind: 'unknown' as const };
    switch (lookup.kind) {
      case 'unknown':
        count('wrong_code');
        return codeForm(ctx, { value: typed, error: messages.wrongCode, status: 400 });
      case 'pick':
        count('picker');
        return pickerPage({ csrf: guard.token(secret as string), ticket: guard.ticket('pick', lookup.code, secret as string), mvpds: lookup.mvpds });
      case 'authenticate':
        return toUpstream(ctx, lookup.code, secret as string, true);
    }
  };

  router.post('activation.mvpd', '/activate/mvpd', async (ctx) => {
    let page: Page;
    try {
      page = (await limited(ctx)) ?? (await submitMvpd(ctx));
    } catch (err) {
      page = failure(ctx, err, guard.openTicket('pick', formOf(ctx).ticket, ctx.cookies.get(cookieName())));
    }
    if (page.status !== 303) send(ctx, page);
  });

  const submitMvpd = async (ctx: AppContext): Promise<Page> => {
    const form = formOf(ctx);
    const secret = ctx.cookies.get(cookieName());
    if (!guard.verify(secret, form.csrf)) {
      count('csrf');
      return codeForm(ctx, { error: messages.csrf, status: 403 });
    }
    // The ticket proves this browser entered this code at POST /activate (which counted it).
    const code = guard.openTicket('pick', form.ticket, secret);
    if (!code) {
      count('wrong_code');
      return codeForm(ctx, { error: messages.ticket, status: 400 });
    }
    const mvpd = typeof form.mvpd === 'string' && form.mvpd.length <= 128 ? form.mvpd : '';
    const choice = await service.choose(code, mvpd, ctx.state.client);
    switch (choice.kind) {
      case 'unknown':
        count('wrong_code');
        return codeForm(ctx, { error: messages.wrongCode, status: 400 });
      case 'invalid_mvpd':
        count('picker');
        return pickerPage({ csrf: guard.token(secret as string), ticket: form.ticket as string, mvpds: choice.mvpds, error: messages.noMvpd, status: 400 });
      case 'done':
        count('redirected');
        markDone(ctx, code);
        return redirect(ctx, service.doneUrl());
      case 'authenticate':
        return toUpstream(ctx, choice.code, secret as string, true);
    }
  };

  router.get('activation.done', '/activate/done', async (ctx) => {
    const code = guard.open('done', ctx.cookies.get(doneCookieName()));
    let page: Page;
    try {
      page = donePage(await service.done({ ...(code ? { code } : {}), signedOut: ctx.query.signed_out, error: ctx.query.error }, ctx.state.client));
    } catch (err) {
      // The household IP's bucket has no token for the profile look-up yet (the viewer's browser
      // came back from the MVPD before the wait passgate allows itself): the same page again after
      // the wait, not the code form; the done cookie still names the code.
      if (err instanceof Problem && err.code === 'upstream_throttled') {
        count('waiting');
        const afterMs = 1000 * Number(err.extra.headers?.['Retry-After'] ?? '1');
        // This page's own path, never the request target as sent (an absolute-form target names a host).
        page = oneMomentPage({ continueUrl: `/activate/done${ctx.search}`, afterMs, status: 'Confirming your sign-in with your TV provider…' });
      } else page = failure(ctx, err);
    }
    send(ctx, page);
  });

  /*
   * "One moment" comes back here; the ticket (bound to this browser's cookie) names the code. Only
   * a continue ticket opens here (never the picker's: its code has no MVPD, and the upstream's
   * authenticate page would dead-end), and only once: a page shown again mints a fresh one.
   */
  router.get('activation.continue', '/activate/continue', async (ctx) => {
    const secret = ctx.cookies.get(cookieName());
    const ticket = ctx.query.ticket;
    const code = guard.openTicket('continue', ticket, secret);
    let page: Page;
    try {
      if (!code || !(await deps.spendTicket(ticket as string))) {
        page = codeForm(ctx, { error: messages.ticket, status: 400 });
      } else page = await toUpstream(ctx, code, secret as string, false);
    } catch (err) {
      page = failure(ctx, err);
    }
    if (page.status !== 303) send(ctx, page);
  });

  router.get('activation.continue.script', '/activate/continue.js', (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = continueScript;
  });

  // A refreshed picker URL or a stray method: HTML, never the JSON problem.
  router.get('activation.mvpd.get', '/activate/mvpd', (ctx) => redirect(ctx, '/activate'));
  const allowed: Record<string, string> = { '/activate': 'GET, HEAD, POST', '/activate/mvpd': 'POST', '/activate/done': 'GET, HEAD', '/activate/continue': 'GET, HEAD' };
  for (const [path, allow] of Object.entries(allowed)) {
    router.all(`activation.method${path.slice('/activate'.length)}`, path, (ctx) => {
      ctx.set('Allow', allow);
      send(ctx, messagePage(405, 'Not available', 'This page cannot be used that way.'));
    });
  }

  // Anything else under /activate is a page too (registered last: every route above answers first);
  // `/activate/` is the code page typed with a slash.
  router.all('activation.not_found', '/activate/{*rest}', (ctx) => strayPage(ctx, messagePage));

  return router;
}

/**
 * For requests no route matched (mounted after the route table): another spelling of the pages'
 * addresses (`/Activate`, `//activate/done`, `/./activate`) answers as the pages do, in HTML.
 */
export function activationStrays(views: Pick<ActivationViews, 'messagePage'>): AppMiddleware {
  return async (ctx, next) => {
    await next();
    if (ctx.status === 404 && (ctx.body === undefined || ctx.body === null) && namesActivationPages(ctx.path)) strayPage(ctx, views.messagePage);
  };
}

/** A GET of the code page under another spelling → 308 to the real address; anything else → the HTML 404 page. */
function strayPage(ctx: AppContext, messagePage: ActivationViews['messagePage']): void {
  const location = ctx.method === 'GET' || ctx.method === 'HEAD' ? codePageLocation(ctx.path, ctx.querystring) : undefined;
  if (location === undefined) {
    send(ctx, messagePage(404, 'Page not found', messages.notFound));
    return;
  }
  headers(ctx);
  ctx.status = 308;
  ctx.set('Location', location);
  ctx.body = '';
}

/** What the viewer typed, normalised for the field ('' for nothing, or not a string). */
function typedCode(value: unknown): string {
  return typeof value === 'string' ? normalizeCode(value.slice(0, 64)) : '';
}

/** The parsed form as strings; anything else (repeated fields, nested objects, no form) is dropped. */
function formOf(ctx: AppContext): Record<string, string | undefined> {
  const body: unknown = ctx.request.body;
  const form: Record<string, string | undefined> = {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return form;
  for (const name of ['csrf', 'code', 'ticket', 'mvpd']) {
    const value = (body as Record<string, unknown>)[name];
    if (typeof value === 'string') form[name] = value;
  }
  return form;
}

function headers(ctx: AppContext, page?: Pick<Page, 'images' | 'script'>): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', contentSecurityPolicy(page));
  ctx.set('X-Frame-Options', 'DENY');
}

function send(ctx: AppContext, page: Page): void {
  headers(ctx, page);
  ctx.status = page.status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = page.html;
}

/** 303 See Other: the browser follows with a GET (the form is not re-posted upstream). */
function redirect(ctx: AppContext, location: string): Page {
  headers(ctx);
  ctx.status = 303;
  ctx.set('Location', location);
  ctx.body = '';
  return { status: 303, html: '' };
}
