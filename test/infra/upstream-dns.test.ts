/**
 * DNS behaviour of the upstream client against a real local DNS server (UDP, dns-packet) and two
 * HTTP servers on 127.0.0.1 and 127.0.0.2 sharing one port, so a name can move between them.
 */
import test, { type ExecutionContext } from 'ava';
import type { Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { clampDnsTtl, hostKind } from '../../src/infra/dns.js';
import { UpstreamUnavailableError, type UpstreamClientOptions } from '../../src/infra/upstream-http.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { sendJson, startLocalUpstream, testUpstreamClient, type LocalUpstream, type TestUpstreamClient } from '../helpers/local-upstream.js';

const NAME = 'pass.passgate.test';

/** Two servers on the same port, one per loopback address, each saying which one it is. */
async function twoServers(t: ExecutionContext, options: { closeConnections?: boolean } = {}): Promise<[LocalUpstream, LocalUpstream]> {
  const answer = (server: string) => (_req: unknown, res: Parameters<typeof sendJson>[0]) =>
    sendJson(res, 200, { server }, options.closeConnections ? { connection: 'close' } : {});
  const one = await startLocalUpstream(t, answer('one'), { host: '127.0.0.1' });
  const two = await startLocalUpstream(t, answer('two'), { host: '127.0.0.2', port: one.port });
  return [one, two];
}

interface Harness extends TestUpstreamClient {
  /** Which server answered a GET. */
  whoAnswers(): Promise<string>;
}

function makeClient(t: ExecutionContext, baseUrl: string, dns: TestDnsServer, overrides: Partial<UpstreamClientOptions> = {}): Harness {
  const { client, registry, log } = testUpstreamClient(t, baseUrl, { ...overrides, dns: { resolver: dns.resolver(), ...overrides.dns } });
  const whoAnswers = async () => {
    const response = await client.request({ operation: 'probe', method: 'GET', path: '/who', idempotent: true });
    return (response.body as { server: string }).server;
  };
  return { client, registry, log, whoAnswers };
}

async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const { values } = (await registry.getSingleMetric(name)?.get()) ?? { values: [] };
  return values.find((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))?.value;
}

test('binding 127.0.0.2 works here (Linux loopback is a /8)', async (t) => {
  const [one, two] = await twoServers(t);
  t.is(one.port, two.port);
});

test('host kinds and the TTL cap', (t) => {
  t.is(hostKind('pass.passgate.svc.cluster.local'), 'fqdn');
  t.is(hostKind('API.Auth.Adobe.com.'), 'fqdn');
  t.is(hostKind('localhost'), 'short-name');
  t.is(hostKind('auth-upstream'), 'short-name');
  t.is(hostKind('printer.local'), 'fqdn', 'DNS may answer .local (cluster.local does); mDNS names fall back, warned');
  t.is(hostKind('app.localhost'), 'local-name');
  t.is(hostKind('127.0.0.1'), 'ip');
  t.is(hostKind('[::1]'), 'ip');
  t.is(clampDnsTtl(undefined), 30);
  t.is(clampDnsTtl(300), 30);
  t.is(clampDnsTtl(1), 1);
  t.is(clampDnsTtl(0), 0);
  t.is(clampDnsTtl(-5), 0);
});

test('with a 1 s cap a DNS change reaches requests within a few seconds, keep-alive or not', async (t) => {
  const [one] = await twoServers(t);
  const dns = await startDnsServer(t, { records: { [NAME]: '127.0.0.1' }, ttlSeconds: 300 });
  const { client, whoAnswers } = makeClient(t, `http://${NAME}:${one.port}`, dns, { dns: { maxTtlSeconds: 1 } });
  t.truthy(client.dnsCache);

  for (let i = 0; i < 3; i++) t.is(await whoAnswers(), 'one');
  dns.setAddress(NAME, '127.0.0.2');

  // Requests every 100 ms keep the pooled socket busy: only the socket TTL can retire it.
  let answer = 'one';
  const deadline = Date.now() + 10_000;
  while (answer === 'one' && Date.now() < deadline) {
    await sleep(100);
    answer = await whoAnswers();
  }
  t.is(answer, 'two');
});

test('with the 30 s cap and a 300 s DNS TTL the answer is cached across new connections', async (t) => {
  const [one] = await twoServers(t, { closeConnections: true }); // every request opens a socket, so every request looks up
  const dns = await startDnsServer(t, { records: { [NAME]: '127.0.0.1' }, ttlSeconds: 300 });
  const { client, registry, whoAnswers } = makeClient(t, `http://${NAME}:${one.port}`, dns, { dns: { maxTtlSeconds: 30 } });

  t.is(await whoAnswers(), 'one');
  const afterFirst = dns.queries(NAME);
  t.true(afterFirst >= 1);
  dns.setAddress(NAME, '127.0.0.2');
  for (let i = 0; i < 5; i++) t.is(await whoAnswers(), 'one', 'the cached answer is used');
  t.is(dns.queries(NAME), afterFirst);
  t.is(one.seen.length, 6);

  t.is(await sample(registry, 'passgate_upstream_dns_lookups_total', { upstream: 'pass', result: 'miss' }), 1);
  t.is(await sample(registry, 'passgate_upstream_dns_lookups_total', { upstream: 'pass', result: 'hit' }), 5);
  t.is(await sample(registry, 'passgate_upstream_dns_cache_entries', { upstream: 'pass' }), 1);

  client.dnsCache?.clear(NAME);
  t.is(await whoAnswers(), 'two', 'a cleared entry is queried again');
});

test('a connect error drops the cached entry, so the next attempt re-resolves', async (t) => {
  const [one] = await twoServers(t);
  // 127.0.0.3 has nothing listening on this port: the connection is refused.
  const dns = await startDnsServer(t, { records: { [NAME]: '127.0.0.3' }, ttlSeconds: 300 });
  const { registry, whoAnswers } = makeClient(t, `http://${NAME}:${one.port}`, dns, { dns: { maxTtlSeconds: 30 } });

  const error = await t.throwsAsync(whoAnswers(), { instanceOf: UpstreamUnavailableError });
  t.is(error?.reason, 'network');
  // Three attempts (two retries), each after the entry was dropped: three DNS misses, not one.
  t.is(await sample(registry, 'passgate_upstream_dns_lookups_total', { upstream: 'pass', result: 'miss' }), 3);

  dns.setAddress(NAME, '127.0.0.1');
  t.is(await whoAnswers(), 'one', 'the new address is used at once, not after the 30 s cap');
});

test('a short name (localhost) works and bypasses the DNS cache', async (t) => {
  const [one] = await twoServers(t);
  const dns = await startDnsServer(t);
  const { client, log, registry, whoAnswers } = makeClient(t, `http://localhost:${one.port}`, dns);

  t.is(await whoAnswers(), 'one');
  t.is(await whoAnswers(), 'one');
  t.is(client.dnsCache, undefined);
  t.is(dns.queries(), 0, 'the resolver is never asked');
  const why = log.lines.filter((line) => String(line.msg).startsWith('upstream DNS cache disabled'));
  t.is(why.length, 1);
  t.like(why[0], { upstream: 'pass', host: 'localhost', hostKind: 'short-name' });
  t.is(await sample(registry, 'passgate_upstream_dns_cache_entries', { upstream: 'pass' }), undefined);
});

test('an IP literal needs no lookup and no cache', async (t) => {
  const [one] = await twoServers(t);
  const dns = await startDnsServer(t);
  const { client, log, whoAnswers } = makeClient(t, `http://127.0.0.2:${one.port}`, dns);
  t.is(await whoAnswers(), 'two');
  t.is(client.dnsCache, undefined);
  t.is(dns.queries(), 0);
  t.true(log.lines.some((line) => line.hostKind === 'ip' && String(line.msg).startsWith('upstream DNS cache disabled')));
});
