import type { PassMvpd } from '../pass/index.js';

/**
 * The activation pages: small, accessible, mobile-first HTML with styles from the same-origin
 * stylesheet (CSP `style-src 'self'`) and no script but the "one moment" page's same-origin one
 * (`script-src 'self'` on that page only). Every value is escaped.
 */

export interface Page {
  status: number;
  html: string;
  /** Loads /activate/continue.js: only this page's CSP allows same-origin script. */
  script?: boolean;
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => escapes[c] ?? c);

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/activate/style.css">
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function alert(message: string | undefined): string {
  return message ? `<p class="alert" role="alert" id="code-error">${escapeHtml(message)}</p>\n` : '';
}

export const messages = {
  wrongCode: 'That code is incorrect or has expired. Check the code on your TV and try again.',
  csrf: 'This page expired. Please enter the code again.',
  ticket: 'This sign-in took too long. Please enter the code from your TV again.',
  noMvpd: 'Choose your TV provider to continue.',
  limited: 'Too many attempts. For your security, code entry is paused. Wait a few minutes, then try again.',
  busy: 'Too many people are activating right now. Wait a few minutes, then try again.',
  unavailable: 'We could not reach the sign-in service. Please try again in a moment.',
  badRequest: 'We could not read that form. Please enter the code again.',
} as const;

export interface CodeFormOptions {
  csrf: string;
  value?: string;
  error?: string;
  status?: number;
}

/** GET /activate, and every re-render of the code form. */
export function codeFormPage(options: CodeFormOptions): Page {
  const invalid = options.error ? ' aria-invalid="true" aria-describedby="code-hint code-error"' : ' aria-describedby="code-hint"';
  const body = `<h1>Activate your TV</h1>
${alert(options.error)}<form method="post" action="/activate" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label for="code">Activation code</label>
<p class="hint" id="code-hint">Enter the code shown on your TV screen.</p>
<input id="code" name="code" type="text" value="${escapeHtml(options.value ?? '')}" autofocus autocomplete="off" autocorrect="off" autocapitalize="characters" spellcheck="false" inputmode="text" maxlength="32"${invalid}>
<button type="submit">Continue</button>
</form>
`;
  return { status: options.status ?? 200, html: layout('Activate your TV', body) };
}

export interface PickerOptions {
  csrf: string;
  ticket: string;
  mvpds: PassMvpd[];
  error?: string;
  status?: number;
}

/** The MVPD picker (the TV's session has no MVPD yet). */
export function pickerPage(options: PickerOptions): Page {
  const choices = options.mvpds
    .map((m, i) => {
      const id = `mvpd-${i}`;
      return `<li><input type="radio" id="${id}" name="mvpd" value="${escapeHtml(m.id)}" required${i === 0 ? ' autofocus' : ''}><label for="${id}">${escapeHtml(m.displayName ?? m.id)}</label></li>`;
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
  return { status: options.status ?? 200, html: layout('Choose your TV provider', body) };
}

export function donePage(): Page {
  const body = `<h1>You're signed in</h1>
<p class="lead">You're signed in — return to your TV.</p>
<p>Your TV will continue on its own in a few seconds. You can close this page.</p>
`;
  return { status: 200, html: layout("You're signed in", body) };
}

/**
 * "One moment" while passgate's mirror of the viewer IP's upstream throttle has no token for the
 * redirect to the TV provider: /activate/continue.js follows the link after `afterMs`; without
 * script the viewer taps it. A status region, not an alert: nothing went wrong.
 */
export function oneMomentPage(options: { continueUrl: string; afterMs: number }): Page {
  const body = `<h1>One moment</h1>
<p role="status">Taking you to your TV provider to sign in…</p>
<p><a id="continue" href="${escapeHtml(options.continueUrl)}" data-after-ms="${Math.max(0, Math.ceil(options.afterMs))}">Continue</a></p>
<script src="/activate/continue.js" defer></script>
`;
  return { status: 200, html: layout('One moment', body), script: true };
}

/** Follows the "one moment" page's link once the wait is over (location.replace: Back skips the wait page). */
export const continueScript = `const link = document.getElementById('continue');
if (link) setTimeout(() => location.replace(link.href), Number(link.dataset.afterMs) || 1000);
`;

/** A page with a message and a way back to the code form (429, 503, 405). */
export function messagePage(status: number, title: string, message: string): Page {
  const body = `<h1>${escapeHtml(title)}</h1>
<p class="alert" role="alert">${escapeHtml(message)}</p>
<p><a href="/activate">Back to code entry</a></p>
`;
  return { status, html: layout(title, body) };
}

/** Mobile first: one column, large touch targets, system colours for dark mode, visible focus. */
export const stylesheet = `:root{color-scheme:light dark;--accent:#0b57d0;--alert:#b3261e;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5}
*{box-sizing:border-box}
body{margin:0;padding:1.5rem 1rem;background:Canvas;color:CanvasText}
main{max-width:28rem;margin:0 auto}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}
label{display:block;font-weight:600}
.hint{margin:.25rem 0 .5rem;color:GrayText}
.lead{font-size:1.25rem}
input[type=text]{display:block;width:100%;font:inherit;font-size:1.6rem;letter-spacing:.15em;text-transform:uppercase;padding:.6rem .75rem;border:2px solid GrayText;border-radius:.5rem;background:Field;color:FieldText}
input[aria-invalid=true]{border-color:var(--alert)}
button{display:block;width:100%;min-height:3rem;margin-top:1.25rem;font:inherit;font-weight:600;font-size:1.1rem;color:#fff;background:var(--accent);border:0;border-radius:.5rem;cursor:pointer}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.alert{padding:.75rem 1rem;border-left:4px solid var(--alert);background:color-mix(in srgb,var(--alert) 10%,Canvas);margin:0 0 1rem}
fieldset{border:0;padding:0;margin:0}
legend{font-weight:600;margin-bottom:.5rem}
.choices{list-style:none;margin:0;padding:0}
.choices li{display:flex;align-items:center;gap:.75rem;min-height:3rem;padding:.25rem .75rem;border:1px solid GrayText;border-radius:.5rem;margin-bottom:.5rem}
.choices input{width:1.25rem;height:1.25rem;margin:0}
.choices label{flex:1;font-weight:500;padding:.5rem 0}
a{color:var(--accent)}
`;
