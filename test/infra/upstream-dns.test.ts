/**
 * DNS behaviour of the upstream client against a real local DNS server (UDP, dns-packet) and two
 * HTTP servers on 127.0.0.1 and 127.0.0.2 sharing one port, so a name can move between them.
 */
import agentkeepalive from 'agentkeepalive';
import test, { type ExecutionContext } from 'ava';
import got from 'got';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { retireSocketsWithTheirAnswer } from '../../src/infra/dns-bound-agent.js';
import { MAX_DNS_TTL_SECONDS, clampDnsTtl, createUpstreamDns, hostKind } from '../../src/infra/dns.js';
import { UpstreamUnavailableError, type UpstreamClientOptions } from '../../src/infra/upstream-http.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import {
  eventually,
  memoryLog,
  sendJson,
  startLocalUpstream,
  testUpstreamClient,
  type LocalUpstream,
  type TestUpstreamClient,
} from '../helpers/local-upstream.js';

const NAME = 'pass.passgate.test';

/** A local upstream that also says on which connection (server side) each request came, and when. */
interface TrackedServer extends LocalUpstream {
  arrivals: Array<{ socket: Socket; at: number }>;
  /** Every connection it accepted a request on; `destroyed` once closed. */
  sockets: Set<Socket>;
}

/**
 * Two servers on the same port, one per loopback address, each saying which one it is. A request
 * for `/who?hold=<ms>` is answered that much later, so it is still in flight when time moves on.
 */
async function twoServers(t: ExecutionContext, options: { closeConnections?: boolean } = {}): Promise<[TrackedServer, TrackedServer]> {
  const start = async (server: string, host: string, port?: number): Promise<TrackedServer> => {
    const arrivals: TrackedServer['arrivals'] = [];
    const sockets = new Set<Socket>();
    const upstream = await startLocalUpstream(
      t,
      (req, res) => {
        const socket = res.socket as Socket;
        arrivals.push({ socket, at: Date.now() });
        sockets.add(socket);
        const hold = Number(new URL(req.url, 'http://x').searchParams.get('hold') ?? 0);
        const answer = () => sendJson(res, 200, { server }, options.closeConnections ? { connection: 'close' } : {});
        if (hold > 0) setTimeout(answer, hold);
        else answer();
      },
      { host, ...(port === undefined ? {} : { port }) },
    );
    return { ...upstream, arrivals, sockets };
  };
  const one = await start('one', '127.0.0.1');
  const two = await start('two', '127.0.0.2', one.port);
  return [one, two];
}

interface Harness extends TestUpstreamClient {
  /** Which server answered a GET (held `holdMs` by the server). */
  whoAnswers(holdMs?: number): Promise<string>;
}

function makeClient(t: ExecutionContext, baseUrl: string, dns: TestDnsServer, overrides: Partial<UpstreamClientOptions> = {}): Harness {
  const { client, registry, log } = testUpstreamClient(t, baseUrl, { ...overrides, dns: { resolver: dns.resolver(), ...overrides.dns } });
  const whoAnswers = async (holdMs = 0) => {
    const response = await client.request({ operation: 'probe', method: 'GET', path: `/who?hold=${holdMs}`, idempotent: true });
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

interface Call {
  startedAt: number;
  server: string;
  phase: 'steady' | 'burst' | 'after';
}

/** One call after another, each `gapMs` after the last answer, until `until`: keep-alive reuses one socket. */
async function steadyTraffic(whoAnswers: Harness['whoAnswers'], until: number, gapMs = 50): Promise<Call[]> {
  const calls: Call[] = [];
  while (Date.now() < until) {
    const startedAt = Date.now();
    calls.push({ startedAt, phase: 'steady', server: await whoAnswers() });
    await sleep(Math.max(0, Math.min(gapMs, until - Date.now())));
  }
  return calls;
}

/** The calls started at or after `instant` that did not go to the new address (server two). */
const oldAfter = (calls: Call[], instant: number) => calls.filter((call) => call.startedAt >= instant && call.server !== 'two');

/** Resolves once every connection `server` ever carried a request on is closed. */
const allClosed = (server: Pick<TrackedServer, 'sockets'>) =>
  eventually(async () => ([...server.sockets].every((socket) => socket.destroyed) ? true : undefined), { timeoutMs: 5_000 });

/**
 * NAME answers 127.0.0.1 with `ttlSeconds`; a client with the DNS cap `capSeconds` (the default
 * when undefined) calls once, which looks the name up and caches it; then the answer switches to
 * 127.0.0.2. The cached answer ends between `lookedUpFrom` + cap and `changedAt` + cap.
 */
async function switchedAnswer(t: ExecutionContext, ttlSeconds: number, capSeconds: number | undefined) {
  const [one, two] = await twoServers(t);
  const dns = await startDnsServer(t, { records: { [NAME]: '127.0.0.1' }, ttlSeconds });
  const harness = makeClient(t, `http://${NAME}:${one.port}`, dns, capSeconds === undefined ? {} : { dns: { maxTtlSeconds: capSeconds } });
  const lookedUpFrom = Date.now();
  t.is(await harness.whoAnswers(), 'one');
  dns.setAddress(NAME, '127.0.0.2');
  return { ...harness, one, two, lookedUpFrom, changedAt: Date.now() };
}

test('steady keep-alive traffic moves when the capped answer ends (TTL 300 s, cap 2 s), and the old socket is closed', async (t) => {
  const capMs = 2_000;
  const { one, registry, whoAnswers, changedAt } = await switchedAnswer(t, 300, capMs / 1_000);
  // A call every 50 ms keeps the pooled socket busy: its idle timeout never retires it.
  const calls = await steadyTraffic(whoAnswers, changedAt + capMs + 1_000);

  t.true(calls.some((call) => call.server === 'one'), 'the cached answer was still used after the change');
  t.deepEqual(oldAfter(calls, changedAt + capMs), [], 'every call started once the cap had passed went to the new address');
  t.is(one.sockets.size, 1, 'keep-alive: one socket carried the old address');
  t.true(one.arrivals.length > 5);
  await allClosed(one);
  t.is(await sample(registry, 'passgate_upstream_dns_retired_sockets_total', { upstream: 'pass' }), 1);
});

test('a DNS TTL below the cap ends the socket with it (TTL 1 s, cap 30 s)', async (t) => {
  const { one, whoAnswers, changedAt } = await switchedAnswer(t, 1, 30);
  const calls = await steadyTraffic(whoAnswers, changedAt + 2_000);
  t.deepEqual(oldAfter(calls, changedAt + 1_000), []);
  t.true(calls.some((call) => call.server === 'two'));
  await allClosed(one);
});

test('with a 0 s cap a socket still carries keep-alive traffic, for 1 s', async (t) => {
  const { one, whoAnswers, changedAt } = await switchedAnswer(t, 300, 0);
  const calls = await steadyTraffic(whoAnswers, changedAt + 1_500);
  t.deepEqual(oldAfter(calls, changedAt + 1_000), [], 'no socket outlives MIN_ANSWER_LIFETIME_MS');
  t.is(one.sockets.size, 1, 'the old address was reached on one reused socket, not one per call');
  t.true(one.arrivals.length > 2);
});

/** A throwaway self-signed certificate for NAME, made with openssl for this test only. */
function testCertificate(t: ExecutionContext): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${NAME}`]
      .concat(['-addext', `subjectAltName=DNS:${NAME}`, '-keyout', key, '-out', cert]),
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

test('over HTTPS too, a keep-alive socket ends with the DNS answer it was opened on (cap 1 s)', async (t) => {
  const tls = testCertificate(t);
  const start = async (server: string, host: string, port = 0) => {
    const sockets = new Set<Socket>();
    const https = createHttpsServer(tls, (req, res) => {
      sockets.add(req.socket);
      sendJson(res, 200, { server });
    });
    await new Promise<void>((resolve) => https.listen(port, host, resolve));
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          https.closeAllConnections();
          https.close(() => resolve());
        }),
    );
    return { sockets, port: (https.address() as AddressInfo).port };
  };
  const one = await start('one', '127.0.0.1');
  await start('two', '127.0.0.2', one.port);
  const dns = await startDnsServer(t, { records: { [NAME]: '127.0.0.1' }, ttlSeconds: 300 });
  const upstreamDns = createUpstreamDns({ upstream: 'pass', hostname: NAME, maxTtlSeconds: 1, resolver: dns.resolver(), logger: memoryLog().logger });
  let retired = 0;
  const agent = retireSocketsWithTheirAnswer(new agentkeepalive.HttpsAgent({ keepAlive: true, ca: tls.cert }), {
    connectionLookup: upstreamDns.connectionLookup,
    onRetired: () => retired++,
  });
  t.teardown(() => agent.destroy());
  const whoAnswers = async () => (await got(`https://${NAME}:${one.port}/who`, { agent: { https: agent } }).json<{ server: string }>()).server;

  t.is(await whoAnswers(), 'one');
  dns.setAddress(NAME, '127.0.0.2');
  const changedAt = Date.now();
  const calls = await steadyTraffic(whoAnswers, changedAt + 2_000);
  t.deepEqual(oldAfter(calls, changedAt + 1_000), []);
  t.true(calls.some((call) => call.server === 'two'));
  t.is(one.sockets.size, 1, 'keep-alive over TLS: one socket carried the old address');
  await allClosed(one);
  t.true(retired >= 1);
});

/** Parallel calls in the burst: more than the agent's 64 sockets, so some wait in its queue. */
const BURST = 80;
/** The burst starts this long before the capped answer can end, and the server holds each call this long. */
const BURST_LEAD_MS = 700;
const BURST_HOLD_MS = 1_200;

/**
 * The measurement (TTL 300 s, the answer switched): steady keep-alive traffic, then, just
 * before the cached answer ends, a burst of parallel calls that opens new sockets on the old
 * answer and is still in flight when it ends, then rounds of 10 parallel calls every 100 ms.
 * Every call started once the cap has passed since the change must reach the new address; each
 * old socket carries at most the one request it had then; all old sockets close.
 */
async function burstAtTheEdge(t: ExecutionContext, capSeconds?: number): Promise<void> {
  const capMs = (capSeconds ?? MAX_DNS_TTL_SECONDS) * 1_000;
  const { one, two, registry, whoAnswers, lookedUpFrom, changedAt } = await switchedAnswer(t, 300, capSeconds);
  const movedBy = changedAt + capMs;

  const calls = await steadyTraffic(whoAnswers, lookedUpFrom + capMs - BURST_LEAD_MS, 100);
  const call = async (phase: Call['phase'], holdMs = 0) => {
    const startedAt = Date.now();
    calls.push({ startedAt, phase, server: await whoAnswers(holdMs) });
  };
  const inFlight = Array.from({ length: BURST }, () => call('burst', BURST_HOLD_MS));
  while (Date.now() < movedBy + 1_500) {
    inFlight.push(...Array.from({ length: 10 }, () => call('after')));
    await sleep(100);
  }
  await Promise.all(inFlight); // no call failed: those in flight when their answer ended finished on their socket

  const burstOnOld = calls.filter((c) => c.phase === 'burst' && c.server === 'one').length;
  t.true(burstOnOld > 1, 'the burst opened new sockets on the old answer');
  t.true(one.sockets.size > 1);
  t.true(calls.filter((c) => c.startedAt >= movedBy).length >= 10, 'traffic went on after the cap');
  t.deepEqual(oldAfter(calls, movedBy), [], 'every call started once the cap had passed since the change went to the new address');
  for (const socket of one.sockets) {
    const late = one.arrivals.filter((arrival) => arrival.socket === socket && arrival.at >= movedBy).length;
    t.true(late <= 1, 'an old socket carried at most one request that reached it after the cap');
  }
  t.true(two.arrivals.length > 0);

  await allClosed(one);
  const retired = (await sample(registry, 'passgate_upstream_dns_retired_sockets_total', { upstream: 'pass' })) ?? 0;
  t.true(retired >= one.sockets.size, `${retired} sockets retired for DNS expiry, ${one.sockets.size} opened on the old answer`);

  const lastOld = Math.max(...calls.filter((c) => c.server === 'one').map((c) => c.startedAt));
  t.log(
    `cap ${capMs / 1_000} s: ${burstOnOld} burst calls on the old answer; the last call to reach the old address ` +
      `started ${((lastOld - changedAt) / 1_000).toFixed(2)} s after the change; every later one reached the new address`,
  );
}

test('a burst at the edge of expiry moves with the rest: every call after the cap (2 s) reaches the new address', async (t) => {
  await burstAtTheEdge(t, 2);
});

// Real time on purpose (~32 s): the acceptance figure of issue 14 with the shipped cap. The only such test.
test('with the default 30 s cap, traffic moved within 31 s of the DNS change, a burst at the edge of expiry included', async (t) => {
  t.timeout(120_000);
  await burstAtTheEdge(t);
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
