import type { ExecutionContext } from 'ava';
import * as dnsPacket from 'dns-packet';
import { createSocket, type RemoteInfo } from 'node:dgram';
import dns from 'node:dns';
import type { AddressInfo } from 'node:net';

const NXDOMAIN = 3;

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, for `Resolver.setServers`. */
  server: string;
  /** Answers A queries for `name` with `address` from now on (AAAA: no data). */
  setAddress(name: string, address: string): void;
  /** Queries received for `name` (A and AAAA, case-insensitive); all names when omitted. */
  queries(name?: string): number;
  /** A resolver that asks only this server, quickly giving up. */
  resolver(): dns.promises.Resolver;
}

/**
 * A tiny authoritative DNS responder on 127.0.0.1:<free port> (UDP), answering A queries for the
 * names it was given with one address and a long TTL; unknown names get NXDOMAIN. Closed when
 * the test ends.
 */
export async function startDnsServer(
  t: ExecutionContext,
  options: { records?: Record<string, string>; ttlSeconds?: number } = {},
): Promise<TestDnsServer> {
  const ttl = options.ttlSeconds ?? 300;
  const records = new Map(Object.entries(options.records ?? {}).map(([name, address]) => [name.toLowerCase(), address]));
  const received: string[] = [];
  const socket = createSocket('udp4');

  socket.on('message', (message: Buffer, peer: RemoteInfo) => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return; // not DNS: ignore, as a real server would
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase();
    received.push(name);
    const address = records.get(name);
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | (address ? 0 : NXDOMAIN),
      questions: [question],
      answers: address && question.type === 'A' ? [{ type: 'A', class: 'IN', name: question.name, ttl, data: address }] : [],
    });
    socket.send(response, peer.port, peer.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const server = `127.0.0.1:${(socket.address() as AddressInfo).port}`;

  return {
    server,
    setAddress: (name, address) => void records.set(name.toLowerCase(), address),
    queries: (name) => (name === undefined ? received.length : received.filter((n) => n === name.toLowerCase()).length),
    resolver() {
      const resolver = new dns.promises.Resolver({ timeout: 500, tries: 2 });
      resolver.setServers([server]);
      return resolver;
    },
  };
}
