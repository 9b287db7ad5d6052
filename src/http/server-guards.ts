import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../infra/logger.js';
import { oncePerRegistry } from '../infra/metrics.js';
import { Problem, type ProblemCode } from './problem.js';

/**
 * What Node's HTTP server refuses before any request reaches Koa (SPEC §8): a request that does
 * not arrive in time (408), headers too large (431), broken framing (400), CONNECT. Each still
 * gets a short problem+json answer while the socket can take one, and a metric.
 */
export interface ServerGuardOptions {
  /** The request's headers and body must both arrive within this; the response time is not counted. */
  requestTimeoutMs: number;
  logger: Logger;
  registry: Registry;
  /** Names the listener in the metric (`public`, `ops`). */
  listener: string;
}

const guardMetrics = oncePerRegistry((registry: Registry) => ({
  refused: new Counter({
    name: 'passgate_http_refused_requests_total',
    help: 'Requests refused by the HTTP server before routing (timeout, header size, framing, CONNECT) by listener and status.',
    labelNames: ['listener', 'status'] as const,
    registers: [registry],
  }),
}));

/** Node's clientError codes → our catalogue; everything else is malformed HTTP (400). */
const refusals: Record<string, { code: ProblemCode; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'request_timeout', detail: 'The request headers and body did not arrive in time.' },
  HPE_HEADER_OVERFLOW: { code: 'request_header_fields_too_large', detail: 'The request headers are larger than the server accepts.' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { code: 'payload_too_large', detail: 'The chunk extensions are larger than the server accepts.' },
};
const malformed = { code: 'bad_request' as const, detail: 'The request is not valid HTTP/1.1 (framing, headers or chunked encoding).' };

/** The methods passgate serves somewhere: what a 405 to CONNECT lists. */
const servedMethods = 'GET, HEAD, POST, PUT, DELETE';

/** A whole HTTP/1.1 response carrying a problem body, closing the connection. */
export function rawProblemResponse(problem: Problem, headers: Record<string, string> = {}): string {
  const body = JSON.stringify(problem.toBody());
  const lines = [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'X-Content-Type-Options: nosniff',
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** The answer has been written: the socket ends once it drains, or is cut if the peer never reads it. */
function answerAndClose(socket: Duplex, response: string): void {
  socket.end(response);
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** What the HTTP server itself answered on a socket whose request a handler had begun (for the access log). */
const serverAnswers = new WeakMap<Duplex, Problem>();

/** The problem the HTTP server wrote on this socket itself (a request cut by the deadline), if any. */
export function serverAnswerOn(socket: Duplex): Problem | undefined {
  return serverAnswers.get(socket);
}

/** Applies the deadlines and the refusal handlers to a server; call before listen(). */
export function guardServer(server: Server, options: ServerGuardOptions): void {
  const metrics = guardMetrics(options.registry);
  const log = options.logger.child({ component: 'http-server', listener: options.listener });

  // Node counts from the first byte of a request to its last (not the response): slow or
  // incomplete clients get 408, long-polls and SSE streams are untouched.
  server.requestTimeout = options.requestTimeoutMs;
  server.headersTimeout = options.requestTimeoutMs;
  // Checked on this cadence (Node: every 30 s), so a deadline is kept within a quarter of itself.
  // A ServerOptions field that @types/node does not list as a property; Node reads it when listening starts.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(100, Math.min(5_000, Math.floor(options.requestTimeoutMs / 4)));

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const refusal = refusals[err.code ?? ''] ?? malformed;
    // A reset or half-closed peer cannot read an answer; nor can one whose response has begun.
    const response = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
      socket.destroy();
      return;
    }
    const problem = new Problem(refusal.code, refusal.detail);
    metrics.refused.inc({ listener: options.listener, status: String(problem.status) });
    log.debug({ code: err.code, status: problem.status }, 'request refused by the HTTP server');
    serverAnswers.set(socket, problem);
    answerAndClose(socket, rawProblemResponse(problem));
  });

  // No tunnels: without this listener Node would drop the connection without an answer.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    metrics.refused.inc({ listener: options.listener, status: '405' });
    log.debug('CONNECT refused');
    socket.on('error', () => socket.destroy());
    answerAndClose(socket, rawProblemResponse(new Problem('method_not_allowed', 'CONNECT is not served here (no tunnels).'), { Allow: servedMethods }));
  });
}
