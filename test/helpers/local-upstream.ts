import type { ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { createLogger, type Logger } from '../../src/infra/logger.js';
import { createMetrics } from '../../src/infra/metrics.js';
import { createUpstreamClient, type UpstreamClient, type UpstreamClientOptions } from '../../src/infra/upstream-http.js';
import { createUpstreamMetrics } from '../../src/infra/upstream-metrics.js';

/** What a local upstream saw: one entry per request, in order. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface LocalUpstream {
  url: string;
  port: number;
  host: string;
  seen: SeenRequest[];
}

type Handler = (req: SeenRequest, res: ServerResponse, n: number) => void;

/**
 * A real HTTP server on `host` (default 127.0.0.1) and `port` (default: a free one) whose
 * handler decides each answer; `n` counts requests from 1. Closed when the test ends.
 */
export async function startLocalUpstream(
  t: ExecutionContext,
  handler: Handler,
  options: { host?: string; port?: number } = {},
): Promise<LocalUpstream> {
  const host = options.host ?? '127.0.0.1';
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(entry);
      handler(entry, res, seen.length);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host}:${port}`, port, host, seen };
}

/**
 * An http URL on 127.0.0.1 whose listener accepts every connection and destroys it at once, so
 * a call to it fails (socket hang up) every time. Unlike a port closed after listening, no other
 * test can take the port meanwhile. Closed when the test ends.
 */
export async function hangUpUrl(t: ExecutionContext, path = '/'): Promise<string> {
  const server = createTcpServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}${path}`;
}

/** Answers `status` with a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

export interface MemoryLog {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
  text(): string;
}

/** A pino logger (the project's, redaction included) whose lines the test reads back. */
export function memoryLog(level = 'debug'): MemoryLog {
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  const destination = {
    write(line: string) {
      raw += line;
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  return { logger: createLogger({ level, destination }), lines, text: () => raw };
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined, at most `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${options.timeoutMs ?? 10_000} ms`);
    await sleep(options.intervalMs ?? 50);
  }
}

export interface TestUpstreamClient {
  client: UpstreamClient;
  registry: Registry;
  log: MemoryLog;
}

/** A 'pass' upstream client on `baseUrl` with fast backoff and its own metrics and log, closed when the test ends. */
export function testUpstreamClient(t: ExecutionContext, baseUrl: string, overrides: Partial<UpstreamClientOptions> = {}): TestUpstreamClient {
  const { registry } = createMetrics({ version: 'test' });
  const log = memoryLog('debug');
  const client = createUpstreamClient({
    name: 'pass',
    baseUrl,
    metrics: createUpstreamMetrics(registry),
    logger: log.logger,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...overrides,
  });
  t.teardown(() => client.close());
  return { client, registry, log };
}
