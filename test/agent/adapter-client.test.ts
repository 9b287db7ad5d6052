/**
 * passgate's adapter client against the simulator's partner adapter (real servers on
 * 127.0.0.1): delivery and what the adapter recorded, a 100 MB upload streamed with bounded
 * memory, which failures are worth a retry, and the deadlines of an upload.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createAdapterClient, type AdapterClient, type AdapterClientDeps } from '../../src/agent/adapter-client.js';
import { loadConfig, localInstanceEnv } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Received } from '../../src/sim/adapter/inbox.js';
import { memoryLog, sendJson, startLocalUpstream } from '../helpers/local-upstream.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const MiB = 1024 * 1024;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'passgate-adapter-client-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface ClientFixture {
  client: AdapterClient;
  registry: Registry;
  logText(): string;
}

/** The client as main.ts would build it: the config loaded with ADAPTER_BASE_URL at `url`. */
async function clientFor(
  t: ExecutionContext,
  url: string,
  options: { upstreamClient?: Partial<Config['upstreamClient']>; minUploadBytesPerSecond?: number } = {},
): Promise<ClientFixture> {
  const loaded = loadConfig(localInstanceEnv({ simUrl: url, dataDir: await tempDir(t) }));
  const config = { ...loaded, upstreamClient: { ...loaded.upstreamClient, ...options.upstreamClient } };
  const registry = new Registry();
  const log = memoryLog('debug');
  const deps: AdapterClientDeps = { config, logger: log.logger, metricsRegistry: registry };
  if (options.minUploadBytesPerSecond) deps.minUploadBytesPerSecond = options.minUploadBytesPerSecond;
  const client = createAdapterClient(deps);
  t.teardown(() => client.close());
  return { client, registry, logText: log.text };
}

/** Writes `mib` MiB of random bytes to a new file, one MiB at a time; its hex SHA-256. */
async function randomFile(path: string, mib: number): Promise<string> {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  for (let i = 0; i < mib; i++) {
    const chunk = randomBytes(MiB);
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

const received = async (f: SimFixture) => (await (await f.call('/sim/adapter/received')).json()) as Received[];

async function setRules(f: SimFixture, rules: object): Promise<void> {
  const response = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
  if (response.status !== 200) throw new Error(`sim config answered ${response.status}`);
}

/** A port that was free a moment ago: nothing listens there now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP listener that accepts connections and then neither reads nor answers: a hung adapter. */
async function hungAdapter(t: ExecutionContext): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const result = (jobId: string) => ({ jobId, sessionId: 'dsid-secret-0123456789', fileId: 'file-1', result: 'success' as const, message: 'decrypted' });

test('uploadResult is delivered and recorded; a repeat is ok again and recorded once', async (t) => {
  const f = await withSim(t);
  const { client, registry, logText } = await clientFor(t, f.url);

  t.deepEqual(await client.uploadResult(result('job-1')), { ok: true, status: 200 });
  t.deepEqual(await client.uploadResult({ ...result('job-2'), result: 'not_drm', message: 'not an envelope' }), { ok: true, status: 200 });
  t.deepEqual(await client.uploadResult(result('job-1')), { ok: true, status: 200 });

  const list = await received(f);
  t.is(list.length, 2);
  t.like(list[0], { kind: 'result', jobId: 'job-1', sessionId: 'dsid-secret-0123456789', fileId: 'file-1', result: 'success', message: 'decrypted', deliveries: 2 });
  t.like(list[1], { kind: 'result', jobId: 'job-2', result: 'not_drm', message: 'not an envelope', deliveries: 1 });

  // The upstream client's metrics label the calls; the session id (it maps to a principal) is never logged.
  const metrics = await registry.metrics();
  t.regex(metrics, /passgate_upstream_requests_total\{upstream="adapter",operation="uploadResult",outcome="ok"\} 3/);
  t.false(logText().includes('dsid-secret'));
});

test('uploadDecrypted streams a 100 MB file: the adapter records its sha256 and size, and RSS stays bounded', async (t) => {
  const f = await withSim(t);
  // A call deadline and request timeout far below what 100 MB takes: an upload gets time by its size.
  const { client } = await clientFor(t, f.url, { upstreamClient: { callDeadlineMs: 200, requestTimeoutMs: 2_000 } });
  const path = join(await tempDir(t), 'plain.bin');
  const sha256 = await randomFile(path, 100);

  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const started = performance.now();
  const outcome = await client.uploadDecrypted({ jobId: 'job-big', fileId: 'file-big', path, filename: '분기 보고서.pdf' });
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  t.log(`100 MiB in ${Math.round(performance.now() - started)} ms; RSS grew ${((peak - baseline) / MiB).toFixed(1)} MiB`);

  t.deepEqual(outcome, { ok: true, status: 200 });
  t.deepEqual(await received(f), [
    { kind: 'decrypted', jobId: 'job-big', fileId: 'file-big', filename: '분기 보고서.pdf', sha256, size: 100 * MiB, deliveries: 1, receivedAt: new Date(f.clock.now()).toISOString() },
  ]);
  // Loose: the client and the simulator share this process, and either buffering the file would add ≥ 100 MiB.
  t.true(peak - baseline < 48 * MiB, `RSS grew ${((peak - baseline) / MiB).toFixed(1)} MiB`);
});

test('adapter.failing: both calls are retryable 503s and nothing is recorded; delivered once it recovers', async (t) => {
  const f = await withSim(t);
  const { client } = await clientFor(t, f.url);
  const path = join(await tempDir(t), 'plain.bin');
  const sha256 = await randomFile(path, 2);
  await setRules(f, { adapter: { failing: true } });

  const refusedResult = await client.uploadResult(result('job-1'));
  t.like(refusedResult, { ok: false, retryable: true, status: 503 });
  t.regex(refusedResult.ok ? '' : refusedResult.reason, /HTTP 503: .*adapter_unavailable/);
  t.like(await client.uploadDecrypted({ jobId: 'job-1', fileId: 'file-1', path, filename: 'plain.bin' }), { ok: false, retryable: true, status: 503 });
  t.deepEqual(await received(f), []);

  await setRules(f, { adapter: { failing: false } });
  t.deepEqual(await client.uploadResult(result('job-1')), { ok: true, status: 200 });
  t.deepEqual(await client.uploadDecrypted({ jobId: 'job-1', fileId: 'file-1', path, filename: 'plain.bin' }), { ok: true, status: 200 });
  t.like((await received(f))[1], { kind: 'decrypted', jobId: 'job-1', sha256, size: 2 * MiB, deliveries: 1 });
});

test('an unreachable adapter (closed port) is retryable, without a status', async (t) => {
  const { client } = await clientFor(t, `http://127.0.0.1:${await closedPort()}`);
  const path = join(await tempDir(t), 'plain.bin');
  await randomFile(path, 1);

  const refused = await client.uploadResult(result('job-1'));
  t.false(refused.ok);
  if (refused.ok) return;
  t.true(refused.retryable);
  t.is(refused.status, undefined);
  t.regex(refused.reason, /ECONNREFUSED/);
  t.like(await client.uploadDecrypted({ jobId: 'job-1', fileId: 'file-1', path, filename: 'plain.bin' }), { ok: false, retryable: true });
});

test('a 400 from the adapter is not retryable, and its words are in the reason', async (t) => {
  const f = await withSim(t);
  const { client } = await clientFor(t, f.url);
  const path = join(await tempDir(t), 'plain.bin');
  await randomFile(path, 1);

  const refused = await client.uploadResult({ ...result(''), message: 'empty job id' });
  t.like(refused, { ok: false, retryable: false, status: 400 });
  t.regex(refused.ok ? '' : refused.reason, /HTTP 400: .*invalid_request/);
  t.like(await client.uploadDecrypted({ jobId: 'job-1', fileId: '', path, filename: 'plain.bin' }), { ok: false, retryable: false, status: 400 });
  t.deepEqual(await received(f), []);
});

test('statuses: 408, 429 and 5xx are retryable; other 4xx and 3xx are final', async (t) => {
  const statuses = [408, 429, 500, 502, 503, 504, 400, 401, 404, 409, 413, 422, 302];
  const upstream = await startLocalUpstream(t, (req, res, n) => sendJson(res, statuses[n - 1] ?? 500, { error: 'test' }));
  // A breaker that never opens here: each status must reach the classification.
  const { client } = await clientFor(t, upstream.url, { upstreamClient: { breaker: { consecutiveFailures: 100, halfOpenAfterMs: 10_000 } } });
  const seen: Array<[number | undefined, boolean]> = [];
  for (let i = 0; i < statuses.length; i++) {
    const outcome = await client.uploadResult(result(`job-${i}`));
    seen.push(outcome.ok ? [outcome.status, true] : [outcome.status, outcome.retryable]);
  }
  t.deepEqual(seen, [[408, true], [429, true], [500, true], [502, true], [503, true], [504, true], [400, false], [401, false], [404, false], [409, false], [413, false], [422, false], [302, false]]);
  t.is(upstream.seen.length, statuses.length, 'one attempt per call: the job runner owns retries');
});

test('a hung adapter fails the upload as retryable once the socket is idle, long before the upload deadline', async (t) => {
  const url = await hungAdapter(t);
  // requestTimeoutMs 300 plus 16 MiB in flight at 32 MiB/s: idle after ~0.8 s; the deadline (32 MiB) would be ~1.3 s.
  const { client } = await clientFor(t, url, { upstreamClient: { requestTimeoutMs: 300, callDeadlineMs: 300 }, minUploadBytesPerSecond: 32 * MiB });
  const path = join(await tempDir(t), 'plain.bin');
  await randomFile(path, 32);

  const started = performance.now();
  const outcome = await client.uploadDecrypted({ jobId: 'job-1', fileId: 'file-1', path, filename: 'plain.bin' });
  const elapsed = performance.now() - started;
  t.like(outcome, { ok: false, retryable: true });
  t.regex(outcome.ok ? '' : outcome.reason, /timeout/);
  t.true(elapsed < 5_000, `gave up after ${Math.round(elapsed)} ms`);

  const result1 = await client.uploadResult(result('job-1'));
  t.like(result1, { ok: false, retryable: true });
  t.regex(result1.ok ? '' : result1.reason, /timeout/);
});

test('an upload slower than the call deadline, answered after a pause longer than the request timeout, is delivered', async (t) => {
  // A real adapter that reads ~8 MiB at ~10 MiB/s, then takes 1.6 s to answer.
  let bytes = 0;
  const server = createHttpServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      req.pause();
      setTimeout(() => req.resume(), 5);
    });
    req.on('end', () => void sleep(1_600).then(() => sendJson(res, 200, { ok: true })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Deadline 300 ms + 8 MiB at 2 MiB/s = 4.3 s; idle bound 300 ms + 4 s; the agent's own socket timeout is 1.3 s.
  const { client } = await clientFor(t, url, { upstreamClient: { requestTimeoutMs: 300, callDeadlineMs: 300 }, minUploadBytesPerSecond: 2 * MiB });
  const path = join(await tempDir(t), 'plain.bin');
  await randomFile(path, 8);

  const started = performance.now();
  const outcome = await client.uploadDecrypted({ jobId: 'job-1', fileId: 'file-1', path, filename: 'plain.bin' });
  const elapsed = performance.now() - started;
  t.deepEqual(outcome, { ok: true, status: 200 });
  t.true(bytes > 8 * MiB, 'the whole multipart body arrived');
  t.true(elapsed > 1_600, `took ${Math.round(elapsed)} ms`);
});

test('a decrypted file that is gone is not retryable, and nothing is sent', async (t) => {
  const f = await withSim(t);
  const { client } = await clientFor(t, f.url);
  const outcome = await client.uploadDecrypted({ jobId: 'job-1', fileId: 'file-1', path: join(await tempDir(t), 'missing.bin'), filename: 'missing.bin' });
  t.deepEqual(outcome, { ok: false, retryable: false, reason: 'the decrypted file cannot be read (ENOENT)' });
  const log = (await (await f.call('/sim/log')).json()) as unknown[];
  t.is(log.length, 0);
});
