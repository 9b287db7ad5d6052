import type { ActivationBrand } from '../config/schema.js';
import type { PassMvpd } from '../pass/index.js';
import type { DoneOutcome } from './service.js';

/**
 * The activation pages: small, accessible, mobile-first HTML with styles from the same-origin
 * stylesheet (CSP `style-src 'self'`) and no script but the "one moment" page's same-origin one
 * (`script-src 'self'` on that page only). Every value is escaped. Each page is one `layout`
 * around its body; the brand (activation.brand) comes from the config.
 */

export interface Page {
  status: number;
  html: string;
  /** Absolute URLs of the images the page shows: the CSP's img-src allows exactly their origins. */
  images?: string[];
  /** Loads /activate/continue.js: only this page's CSP allows same-origin script. */
  script?: boolean;
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => escapes[c] ?? c);

/** Only http(s) image URLs are ever put in a page (a logo from the upstream may be anything). */
export const imageUrl = (url: string | undefined): string | undefined => (url && /^https?:\/\/[^\s"'<>]+$/i.test(url) ? url : undefined);

export const messages = {
  wrongCode: 'That code is incorrect or has expired. Check the code on your TV and try again.',
  emptyCode: 'Enter the code shown on your TV.',
  csrf: 'This page expired. Please enter the code again.',
  ticket: 'This sign-in took too long. Please enter the code from your TV again.',
  noMvpd: 'Choose your TV provider to continue.',
  limited: 'For your security, code entry is paused. Wait a few minutes, then try again.',
  busy: 'Too many people are activating right now. Wait a few minutes, then try again.',
  paced: 'The sign-in service needs a moment for your network. Wait a few seconds, then press Continue again.',
  unavailable: 'We could not reach the sign-in service. Please try again in a moment.',
  badRequest: 'We could not read that form. Please enter the code again.',
  notFound: 'There is no page at this address.',
} as const;

export interface CodeFormOptions {
  csrf: string;
  value?: string;
  error?: string;
  /** A message that is not about the field (the code stays as typed, not marked invalid). */
  notice?: string;
  status?: number;
}

export interface PickerOptions {
  csrf: string;
  ticket: string;
  mvpds: PassMvpd[];
  error?: string;
  status?: number;
}

/** The pages of one brand. */
export type ActivationViews = ReturnType<typeof activationViews>;

export function activationViews(brand: ActivationBrand) {
  const logo = imageUrl(brand.logoUrl);

  /** The one frame every page shares: the brand header (a side panel on wide screens) and the main column. */
  function layout(title: string, body: string, options: { status?: number; images?: string[]; wide?: boolean } = {}): Page {
    const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/activate/style.css">
</head>
<body>
<header class="brand">
<a class="brand-home" href="/activate">${logo ? `<img class="brand-logo" src="${escapeHtml(logo)}" alt="" height="40">` : ''}<span class="brand-name">${escapeHtml(brand.name)}</span></a>
<p class="brand-tagline">Sign in to watch on your TV</p>
<ol class="brand-steps">
<li>Enter the code your TV shows</li>
<li>Sign in with your TV provider</li>
<li>Go back to your TV and watch</li>
</ol>
</header>
<main${options.wide ? ' class="wide"' : ''}>
${body}
</main>
</body>
</html>
`;
    return { status: options.status ?? 200, html, images: [...(logo ? [logo] : []), ...(options.images ?? [])] };
  }

  const alert = (message: string | undefined) => (message ? `<p class="alert" role="alert" id="code-error">${escapeHtml(message)}</p>\n` : '');

  /** GET /activate, and every re-render of the code form. */
  function codeFormPage(options: CodeFormOptions): Page {
    const invalid = options.error ? ' aria-invalid="true" aria-describedby="code-error code-hint"' : ' aria-describedby="code-hint"';
    const body = `<h1>Activate your TV</h1>
${alert(options.error ?? options.notice)}<form method="post" action="/activate" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label for="code">Activation code</label>
<p class="hint" id="code-hint">Your TV shows it beside this page's address. Capitals, spaces and dashes don't matter.</p>
<input id="code" name="code" type="text" value="${escapeHtml(options.value ?? '')}" autofocus autocomplete="off" autocorrect="off" autocapitalize="characters" spellcheck="false" inputmode="text" maxlength="32"${invalid}>
<button type="submit">Continue</button>
</form>
`;
    return layout('Activate your TV', body, { ...(options.status ? { status: options.status } : {}) });
  }

  /** The MVPD picker (the TV's session has no MVPD yet), with each provider's logo when the upstream gives one. */
  function pickerPage(options: PickerOptions): Page {
    const logos: string[] = [];
    const choices = options.mvpds
      .map((m, i) => {
        const id = `mvpd-${i}`;
        const src = imageUrl(m.logoUrl);
        if (src) logos.push(src);
        // alt="": the label's text names the provider; the logo only helps recognise it.
        const image = src ? `<img class="mvpd-logo" src="${escapeHtml(src)}" alt="" width="96" height="48" loading="lazy">` : '';
        return `<li><input type="radio" id="${id}" name="mvpd" value="${escapeHtml(m.id)}" required${i === 0 ? ' autofocus' : ''}><label for="${id}">${image}<span>${escapeHtml(m.displayName ?? m.id)}</span></label></li>`;
      })
      .join('\n');
    const body = `<h1>Choose your TV provider</h1>
${alert(options.error)}<form method="post" action="/activate/mvpd">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<input type="hidden" name="ticket" value="${escapeHtml(options.ticket)}">
<fieldset>
<legend>Your TV provider</legend>
<ul class="choices">
${choices}
</ul>
</fieldset>
<button type="submit">Continue to sign in</button>
</form>
`;
    return layout('Choose your TV provider', body, { images: logos, wide: true, ...(options.status ? { status: options.status } : {}) });
  }

  /** GET /activate/done: one mark and one heading for what happened, then what to do next. */
  function donePage(outcome: DoneOutcome): Page {
    const start = '<p><a class="button-link" href="/activate">Enter a code</a></p>';
    switch (outcome.kind) {
      case 'signed_in':
        return resultPage('success', "You're signed in", `<p class="lead">Signed in with ${escapeHtml(outcome.mvpd)}. Return to your TV: it continues on its own in a few seconds.</p>
<p>You can close this page.</p>`);
      case 'signed_out':
        return resultPage('success', "You're signed out", `<p class="lead">Signed out of ${escapeHtml(outcome.mvpd)}. To watch again, sign in from your TV.</p>
<p>You can close this page.</p>`);
      case 'failed': {
        const why = {
          denied: 'Your TV provider did not allow the sign-in, or it was cancelled.',
          error: 'Your TV provider could not complete the sign-in.',
          unconfirmed: 'We could not confirm a sign-in for the code you entered.',
        }[outcome.reason];
        return resultPage('failure', 'Sign-in not completed', `<p class="lead">${why} Your TV is not signed in.</p>
<p>To try again, get a new code on your TV, then enter it here.</p>
${start}`);
      }
      case 'direct':
        return layout('Activate your TV', `<h1>Nothing to finish here</h1>
<p class="lead">This page confirms a sign-in started from your TV. To sign in, enter the code your TV shows.</p>
${start}
`);
    }
  }

  /**
   * "One moment" while passgate's mirror of the viewer IP's upstream throttle has no token for the
   * redirect to the TV provider (or, `status` "Confirming…", for the done page's own look-up):
   * /activate/continue.js follows the link after `afterMs`; without script the viewer taps it. A
   * status region, not an alert: nothing went wrong.
   */
  function oneMomentPage(options: { continueUrl: string; afterMs: number; status?: string }): Page {
    const body = `<h1>One moment</h1>
<p role="status">${escapeHtml(options.status ?? 'Taking you to your TV provider to sign in…')}</p>
<p><a id="continue" href="${escapeHtml(options.continueUrl)}" data-after-ms="${Math.max(0, Math.ceil(options.afterMs))}">Continue</a></p>
<script src="/activate/continue.js" defer></script>
`;
    return { ...layout('One moment', body), script: true };
  }

  /** A page with a message and a way back to the code form (404, 405, 429, 503). */
  function messagePage(status: number, title: string, message: string): Page {
    const body = `<h1>${escapeHtml(title)}</h1>
<p class="alert" role="alert">${escapeHtml(message)}</p>
<p><a href="/activate">Back to code entry</a></p>
`;
    return layout(title, body, { status });
  }

  function resultPage(mark: 'success' | 'failure', title: string, text: string): Page {
    return layout(title, `<div class="result ${mark}">
${mark === 'success' ? successMark : failureMark}
<h1>${escapeHtml(title)}</h1>
</div>
${text}
`);
  }

  return { layout, codeFormPage, pickerPage, donePage, oneMomentPage, messagePage, stylesheet: stylesheet(brand) };
}

/** Follows the "one moment" page's link once the wait is over (location.replace: Back skips the wait page). */
export const continueScript = `const link = document.getElementById('continue');
if (link) setTimeout(() => location.replace(link.href), Number(link.dataset.afterMs) || 1000);
`;

// Inline SVG (no request, nothing for the CSP to allow); hidden from assistive technology: the heading says it.
const successMark =
  '<svg class="mark" viewBox="0 0 48 48" width="56" height="56" aria-hidden="true" focusable="false"><circle cx="24" cy="24" r="22"/><path d="M14 25l7 7 13-15" fill="none" stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/></svg>';
const failureMark =
  '<svg class="mark" viewBox="0 0 48 48" width="56" height="56" aria-hidden="true" focusable="false"><circle cx="24" cy="24" r="22"/><path d="M16 16l16 16M32 16L16 32" fill="none" stroke-width="5" stroke-linecap="round"/></svg>';

/**
 * Mobile first: one column, large touch targets, visible focus. Colours are explicit (not system
 * colours, whose contrast varies by browser): body text 16:1, hints 7:1 in light and dark; white
 * text on the accent is at least 4.5:1 (the config refuses lighter accents). From 56rem the brand
 * becomes a side panel and the picker a grid of provider tiles.
 */
function stylesheet(brand: ActivationBrand): string {
  return `:root{color-scheme:light dark;--accent:${brand.accentColor};--bg:#ffffff;--fg:#1b1b1f;--muted:#4a4a52;--line:#767680;--tile:#f4f4f7;--alert:#b3261e;--alert-bg:#fceeee;--ok:#146c2e;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5}
@media (prefers-color-scheme:dark){:root{--bg:#121214;--fg:#ececf1;--muted:#c4c4cc;--line:#8e8e99;--tile:#1e1e22;--alert:#ffb4ab;--alert-bg:#3a1512;--ok:#7fdc95}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);min-height:100vh}
.brand{background:var(--accent);color:#fff;padding:.75rem 1rem}
.brand-home{display:inline-flex;align-items:center;gap:.6rem;color:#fff;text-decoration:none;font-weight:700;font-size:1.15rem}
.brand-home:focus-visible{outline-color:#fff}
.brand-logo{height:2.5rem;width:auto;max-width:10rem}
.brand-tagline,.brand-steps{display:none;margin:0}
main{max-width:30rem;margin:0 auto;padding:1.5rem 1rem 2.5rem}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}
label{display:block;font-weight:600}
.hint{margin:.25rem 0 .5rem;color:var(--muted)}
.lead{font-size:1.2rem}
input[type=text]{display:block;width:100%;font:inherit;font-size:1.6rem;letter-spacing:.15em;text-transform:uppercase;padding:.6rem .75rem;border:2px solid var(--line);border-radius:.5rem;background:var(--bg);color:var(--fg)}
input[aria-invalid=true]{border-color:var(--alert)}
button,.button-link{display:block;width:100%;min-height:3rem;margin-top:1.25rem;font:inherit;font-weight:600;font-size:1.1rem;color:#fff;background:var(--accent);border:0;border-radius:.5rem;cursor:pointer;text-align:center;text-decoration:none;line-height:3rem}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.alert{padding:.75rem 1rem;border-left:4px solid var(--alert);background:var(--alert-bg);margin:0 0 1rem}
fieldset{border:0;padding:0;margin:0;min-width:0}
legend{font-weight:600;margin-bottom:.5rem}
.choices{list-style:none;margin:0;padding:0;display:grid;gap:.5rem}
.choices li{display:flex;align-items:center;gap:.75rem;min-height:3.5rem;padding:.25rem .75rem;border:1px solid var(--line);border-radius:.5rem;background:var(--tile)}
.choices li:has(input:checked){border:2px solid var(--accent)}
.choices input{width:1.25rem;height:1.25rem;margin:0;accent-color:var(--accent);flex:none}
.choices label{flex:1;display:flex;align-items:center;gap:.75rem;font-weight:500;padding:.5rem 0;cursor:pointer}
.mvpd-logo{width:4.5rem;height:2.25rem;object-fit:contain;flex:none;background:#fff;border-radius:.25rem}
.result{display:flex;align-items:center;gap:1rem;margin-bottom:1rem}
.result h1{margin:0}
.mark{flex:none}
.success .mark circle{fill:var(--ok)}
.failure .mark circle{fill:var(--alert)}
.mark path{stroke:var(--bg)}
a{color:inherit}
@media (min-width:56rem){
body{display:grid;grid-template-columns:minmax(18rem,2fr) 3fr}
.brand{padding:3rem 2.5rem;display:flex;flex-direction:column;gap:1.25rem}
.brand-home{font-size:1.6rem}
.brand-logo{height:3.5rem;max-width:14rem}
.brand-tagline{display:block;font-size:1.4rem;font-weight:600}
.brand-steps{display:block;padding-left:1.5rem;font-size:1.1rem;line-height:2.2}
main{margin:0;padding:4rem 4rem;max-width:40rem;align-self:center}
main.wide{max-width:52rem}
h1{font-size:2rem}
main.wide .choices{grid-template-columns:repeat(auto-fill,minmax(15rem,1fr))}
button,.button-link{display:inline-block;width:auto;min-width:16rem;padding:0 2rem}
}
`;
}
