import type { RegisteredDevice, SimFixture } from './with-sim.js';

export const form = (fields: Record<string, string>) => ({
  'content-type': 'application/x-www-form-urlencoded',
  body: new URLSearchParams(fields).toString(),
});

/** POST /api/v2/{sp}/sessions with a form body, as the device. */
export async function createSession(f: SimFixture, device: RegisteredDevice, fields: Record<string, string>, sp = 'REF30') {
  const { body, ...type } = form(fields);
  return f.call(`/api/v2/${sp}/sessions`, { method: 'POST', headers: device.headers(type), body });
}

export const fullSession = { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' };

/** The hidden login-transaction field of the MVPD login page. */
export function hiddenSession(html: string): string {
  const match = /name="session" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('login page has no session field');
  return match[1];
}

export interface LoginResult {
  /** The login page URL the authenticate endpoint redirected to. */
  loginUrl: string;
  /** The POST's answer (302 to redirectUrl on success, 401 on bad credentials). */
  response: Response;
}

/**
 * The browser path over plain HTTP: GET authenticate/{sp}/{code} → 302 login page → GET it →
 * POST the form. Redirects are followed by hand so every hop can be asserted.
 */
export async function loginThroughMvpd(f: SimFixture, authenticatePath: string, username: string, password: string): Promise<LoginResult> {
  const start = await f.call(authenticatePath);
  if (start.status !== 302) throw new Error(`authenticate answered ${start.status}: ${await start.text()}`);
  const loginUrl = start.headers.get('location') ?? '';
  const page = await fetch(loginUrl, { redirect: 'manual' });
  if (page.status !== 200) throw new Error(`login page answered ${page.status}`);
  const session = hiddenSession(await page.text());
  const target = new URL(loginUrl);
  target.search = '';
  const response = await fetch(target, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ session, username, password }).toString(),
  });
  return { loginUrl, response };
}
