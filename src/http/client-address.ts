import proxyaddr from 'proxy-addr';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { AppMiddleware } from './context.js';

/** Where the device really is: what passgate forwards upstream (X-Forwarded-For, connectionIp/Port). */
export interface ClientAddress {
  ip: string;
  port?: number;
  /**
   * The app's AP-Visitor-Identifier (its Experience Cloud visitor id) on a /v1 request, checked by
   * visitor-identifier.ts: forwarded unchanged on the upstream calls made for that request, never logged.
   */
  visitor?: string;
  /**
   * Single sign-on credentials the app sent on this /v1 request (sso-credentials.ts): forwarded on the
   * upstream calls of this request whose pages list them. Request-scoped: never stored (a pending
   * sign-in keeps storedAddress(client)), never logged.
   */
  sso?: SsoCredentials;
}

export interface SsoCredentials {
  /** AP-Partner-Framework-Status, Base64 of the checked status JSON. */
  partnerFrameworkStatus?: string;
  /** Adobe-Subject-Token (or Roku's X-Roku-Reserved-Roku-Connect-Token) or AD-Service-Token. */
  token?: { header: 'adobe-subject-token' | 'x-roku-reserved-roku-connect-token' | 'ad-service-token'; value: string };
}

/** What of a ClientAddress may outlive its request in the store: where the device is, not its credentials. */
export function storedAddress(client: ClientAddress): ClientAddress {
  const { sso: _credentials, ...address } = client;
  return address;
}

/**
 * SPEC §6/§8: the device IP is the socket peer unless that peer is a configured trusted proxy,
 * in which case X-Forwarded-For is walked right to left up to the first untrusted hop
 * (proxy-addr). An arbitrary client's X-Forwarded-For is never believed.
 */
export function clientAddressResolver(trusted: string[], portHeader?: string): (req: IncomingMessage) => ClientAddress {
  // With no trusted proxy the peer is the answer: X-Forwarded-For is not even parsed.
  const trust = trusted.length === 0 ? undefined : proxyaddr.compile(trusted);
  const address = (req: IncomingMessage): string => (trust ? proxyaddr(req, trust) : (req.socket.remoteAddress ?? ''));
  return (req) => {
    const raw = address(req);
    // IPv4-mapped IPv6 (::ffff:1.2.3.4) is the IPv4 device the upstream knows.
    const ip = raw.startsWith('::ffff:') && isIP(raw.slice(7)) === 4 ? raw.slice(7) : raw;
    const peer = req.socket.remoteAddress ?? '';
    if (raw === peer) {
      const port = req.socket.remotePort;
      return port === undefined ? { ip } : { ip, port };
    }
    // Through a proxy the source port is known only if that (trusted) proxy says so.
    const header = portHeader ? req.headers[portHeader] : undefined;
    const port = typeof header === 'string' && /^\d{1,5}$/.test(header) && Number(header) <= 65535 ? Number(header) : undefined;
    return port === undefined ? { ip } : { ip, port };
  };
}

declare module './context.js' {
  interface AppState {
    /** The device's address, trusted-proxy aware (set by the clientAddress middleware). */
    client: ClientAddress;
  }
}

export function clientAddress(trusted: string[], portHeader?: string): AppMiddleware {
  const resolve = clientAddressResolver(trusted, portHeader);
  return async (ctx, next) => {
    ctx.state.client = resolve(ctx.req);
    await next();
  };
}
