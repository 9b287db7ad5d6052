import agentkeepalive from 'agentkeepalive';
import type CacheableLookup from 'cacheable-lookup';
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  IsolatedCircuitError,
  circuitBreaker,
  handleWhen,
  retry,
} from 'cockatiel';
import got, { RequestError, TimeoutError, type OptionsInit, type Response } from 'got';
import type dns from 'node:dns';
import { retireSocketsWithTheirAnswer } from './dns-bound-agent.js';
import { createUpstreamDns, type UpstreamDns } from './dns.js';
import type { Logger } from './logger.js';
import { breakerStateValue, type BreakerStateName, type UpstreamMetrics, type UpstreamOutcome } from './upstream-metrics.js';

const { HttpAgent, HttpsAgent } = agentkeepalive;

export interface UpstreamClientOptions {
  /** 'pass' | 'drm' | 'adapter': a metrics label. */
  name: string;
  /** No trailing slash. In-cluster upstreams: use the FQDN (name.namespace.svc.cluster.local), see dns.ts. */
  baseUrl: string;
  /** From createUpstreamMetrics(registry), shared by all clients of a registry. */
  metrics: UpstreamMetrics;
  logger: Logger;
  /** Per attempt (got's phases); defaults: lookup 1 s, connect 2 s, response headers 5 s, whole request 8 s. */
  timeouts?: { lookupMs?: number; connectMs?: number; responseMs?: number; requestMs?: number };
  /** maxTtlSeconds: default 30, clamped to ≤ 30, 0 = no caching. resolver: tests point it at a local DNS server. */
  dns?: { maxTtlSeconds?: number; resolver?: dns.promises.Resolver };
  /** maxRetries: default 2, clamped to ≤ 2. Backoff is exponential with decorrelated jitter. */
  retry?: { maxRetries?: number; baseDelayMs?: number; maxDelayMs?: number };
  /**
   * The whole call's budget, every attempt and backoff included (default 10 s): a hung upstream
   * is an answer (503) within it, however many retries were allowed (SPEC §8).
   */
  callDeadlineMs?: number;
  /** Opens after `consecutiveFailures` (default 5) failed attempts; tries again after `halfOpenAfterMs` (default 10 s). */
  breaker?: { consecutiveFailures?: number; halfOpenAfterMs?: number };
  /** The largest answer read (default DEFAULT_MAX_RESPONSE_BYTES); a larger one is cut as it arrives. */
  maxResponseBytes?: number;
}

/**
 * Upstream answers are JSON documents, license bytes and certificates of kilobytes: one of 16 MiB
 * is already absurd. Answers are buffered whole, so without a bound one huge answer (a broken or
 * hostile upstream) holds its size in memory, past a 512 MiB pod's limit.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface UpstreamCall {
  /** A metrics label, e.g. 'dcr.register', 'configuration', 'decisions.authorize'. */
  operation: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Appended to baseUrl, already encoded. */
  path: string;
  headers?: Record<string, string>;
  searchParams?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  /** A FormData body is encoded as it is sent: its file parts (e.g. fs.openAsBlob) stream from disk, never buffered. */
  body?: Buffer | string | FormData;
  /** Only idempotent calls are retried. */
  idempotent: boolean;
  signal?: AbortSignal;
  /**
   * For a body whose sending time grows with its size (an upload), in place of the client's
   * request timeout and call deadline: `deadlineMs` is the whole budget, and the call also fails
   * once its socket has been idle for `idleMs` (or the answer takes that long after the last
   * byte was written), so a hung upstream is not waited out.
   */
  upload?: { deadlineMs: number; idleMs: number };
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON when the content type is JSON (the text if it does not parse), else the text. */
  body: unknown;
  rawBody: Buffer;
}

export type UpstreamUnavailableReason = 'breaker_open' | 'timeout' | 'network' | 'server_error';

/** The upstream could not give an answer worth parsing. Maps to a 503 with Retry-After. */
export class UpstreamUnavailableError extends Error {
  readonly code = 'upstream_unavailable';
  readonly upstream: string;
  readonly reason: UpstreamUnavailableReason;
  readonly retryAfterMs?: number;
  /** `server_error` only: what the upstream answered. */
  readonly response?: UpstreamResponse;

  constructor(
    upstream: string,
    reason: UpstreamUnavailableReason,
    options: { retryAfterMs?: number; response?: UpstreamResponse; detail?: string; cause?: unknown } = {},
  ) {
    super(`upstream ${upstream} unavailable: ${reason}${options.detail ? ` (${options.detail})` : ''}`, { cause: options.cause });
    this.name = 'UpstreamUnavailableError';
    this.upstream = upstream;
    this.reason = reason;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.response) this.response = options.response;
  }

  /**
   * 5xx responses are returned, not thrown (callers parse enhanced errors); a caller that wants
   * to give up on one turns it into this error, Retry-After included.
   */
  static fromResponse(upstream: string, response: UpstreamResponse): UpstreamUnavailableError {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
    return new UpstreamUnavailableError(upstream, 'server_error', {
      response,
      detail: `HTTP ${response.status}`,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
}

export interface UpstreamClient {
  readonly name: string;
  request(call: UpstreamCall): Promise<UpstreamResponse>;
  breakerState(): BreakerStateName;
  /** Destroys the keep-alive agents and stops reporting this client's DNS cache. */
  close(): void;
  /** This client's DNS cache; undefined for short names and IP literals (plain lookup, see dns.ts). */
  readonly dnsCache: CacheableLookup | undefined;
}

const DEFAULT_TIMEOUTS = { lookupMs: 1_000, connectMs: 2_000, responseMs: 5_000, requestMs: 8_000 };
const MAX_RETRIES = 2; // SPEC §6: ≤ 2 retries
const RETRY_STATUSES = new Set([500, 502, 503, 504]);
// Errors of the socket's first steps: the address may be stale, so the next attempt re-resolves.
const CONNECT_ERROR_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECT_TIMEOUT_EVENTS = new Set(['lookup', 'connect', 'secureConnect']);
const JSON_CONTENT_TYPE = /^[^;]*[/+]json\s*(?:;|$)/i;

const positive = (value: number | undefined, fallback: number) =>
  value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;

/** Network errors and timeouts: the upstream did not answer. */
const isTransient = (error: Error) =>
  error instanceof UpstreamUnavailableError && (error.reason === 'network' || error.reason === 'timeout');

/** The `upstream_client` settings of the config file (SPEC §6), as every upstream client takes them. */
export interface UpstreamClientSettings {
  dnsMaxTtlSeconds: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxRetries: number;
  callDeadlineMs: number;
  breaker: { consecutiveFailures: number; halfOpenAfterMs: number };
}

/** A client for one upstream with the configured timeouts, DNS cap, retries and breaker. */
export function createConfiguredUpstreamClient(
  name: string,
  baseUrl: string,
  settings: UpstreamClientSettings,
  deps: Pick<UpstreamClientOptions, 'metrics' | 'logger'>,
): UpstreamClient {
  return createUpstreamClient({
    name,
    baseUrl,
    ...deps,
    timeouts: { connectMs: settings.connectTimeoutMs, requestMs: settings.requestTimeoutMs },
    dns: { maxTtlSeconds: settings.dnsMaxTtlSeconds },
    retry: { maxRetries: settings.maxRetries },
    callDeadlineMs: settings.callDeadlineMs,
    breaker: settings.breaker,
  });
}

/** One client per upstream: one got instance, one keep-alive agent pair, one DNS cache, one breaker. */
export function createUpstreamClient(options: UpstreamClientOptions): UpstreamClient {
  const { name, metrics, logger } = options;
  const base = new URL(options.baseUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`upstream ${name}: baseUrl must be http(s)`);

  const timeouts = {
    lookupMs: positive(options.timeouts?.lookupMs, DEFAULT_TIMEOUTS.lookupMs),
    connectMs: positive(options.timeouts?.connectMs, DEFAULT_TIMEOUTS.connectMs),
    responseMs: positive(options.timeouts?.responseMs, DEFAULT_TIMEOUTS.responseMs),
    requestMs: positive(options.timeouts?.requestMs, DEFAULT_TIMEOUTS.requestMs),
  };
  const maxRetries = Math.min(MAX_RETRIES, Math.max(0, Math.floor(options.retry?.maxRetries ?? MAX_RETRIES)));
  const backoff = new ExponentialBackoff({
    initialDelay: positive(options.retry?.baseDelayMs, 100),
    maxDelay: positive(options.retry?.maxDelayMs, 1_000),
  });
  const halfOpenAfterMs = positive(options.breaker?.halfOpenAfterMs, 10_000);
  const callDeadlineMs = positive(options.callDeadlineMs, 10_000);
  const maxResponseBytes = positive(options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES);

  const hostname = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const upstreamDns: UpstreamDns = createUpstreamDns({
    upstream: name,
    hostname,
    maxTtlSeconds: options.dns?.maxTtlSeconds,
    resolver: options.dns?.resolver,
    logger,
  });
  const unwatchDns = upstreamDns.cache
    ? metrics.watchDnsCache({ upstream: name, entries: upstreamDns.entries, lookups: upstreamDns.lookups })
    : () => {};

  const agentOptions = {
    keepAlive: true,
    maxSockets: 64,
    // As many kept as may be open: in a storm every socket is needed again a moment later, and one
    // closed per call past a smaller free pool costs a TCP handshake and a TIME_WAIT each (the
    // token-proxy bench row: ~20% of its CPU per request with 16).
    maxFreeSockets: 64,
    freeSocketTimeout: 4_000,
    // Socket inactivity bound of the agent; got's own timeouts must fire first.
    timeout: timeouts.requestMs + 1_000,
  };
  // ecosystem.md §4.3: DNS is consulted only for new sockets, so each socket ends with the DNS
  // answer it was opened on (its capped TTL), however busy: a DNS change reaches every request
  // that starts after the cached answer ends, within the cap, bursts included (issue 14).
  if (upstreamDns.kind !== 'ip') metrics.dnsRetiredSockets.inc({ upstream: name }, 0);
  const lifetime = {
    connectionLookup: upstreamDns.connectionLookup,
    onRetired: () => metrics.dnsRetiredSockets.inc({ upstream: name }),
  };
  const agents = {
    http: retireSocketsWithTheirAnswer(new HttpAgent(agentOptions), lifetime),
    https: retireSocketsWithTheirAnswer(new HttpsAgent(agentOptions), lifetime),
  };

  const http = got.extend({
    prefixUrl: base.href.replace(/\/+$/, ''),
    timeout: {
      lookup: timeouts.lookupMs,
      connect: timeouts.connectMs,
      secureConnect: timeouts.connectMs,
      response: timeouts.responseMs,
      request: timeouts.requestMs,
    },
    retry: { limit: 0 }, // cockatiel is the one retry layer (ecosystem.md §4.1)
    throwHttpErrors: false, // non-2xx are returned: callers parse enhanced errors
    followRedirect: false,
    // The agents resolve through this client's own DNS cache (never got's process-global one,
    // maxTtl Infinity): they need each answer's end, which got's dnsCache option does not give.
    agent: agents,
    headers: { 'user-agent': 'passgate' },
  });

  /*
   * Composition: retry OUTSIDE the breaker, i.e. retry(breaker(attempt)), as in the cockatiel README.
   * - The breaker sees every attempt that reached the upstream, so "5 consecutive failures" means
   *   5 failed requests whether or not the calls were retryable (POSTs count too).
   * - Once it opens, the remaining retries of in-flight calls stop at once: BrokenCircuitError is
   *   not retryable, so no retry hammers a dead upstream.
   * Failures are network errors, timeouts and 5xx; 4xx and 429 are answers, not outages.
   */
  const breaker = circuitBreaker(
    handleWhen(isTransient).orWhenResult((result) => (result as UpstreamResponse).status >= 500),
    { halfOpenAfter: halfOpenAfterMs, breaker: new ConsecutiveBreaker(positive(options.breaker?.consecutiveFailures, 5)) },
  );
  const retryable = handleWhen(isTransient).orWhenResult((result) => RETRY_STATUSES.has((result as UpstreamResponse).status));

  // cockatiel times the half-open wait with Date.now(), so the remaining time is read the same way.
  let openedAt = 0;
  const stateName = (state: CircuitState): BreakerStateName =>
    state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open';
  metrics.breakerState.set({ upstream: name }, breakerStateValue.closed);
  for (const to of ['closed', 'half-open', 'open'] as const) metrics.breakerTransitions.inc({ upstream: name, to }, 0);
  breaker.onStateChange((state) => {
    const to = stateName(state);
    if (to === 'open') openedAt = Date.now();
    metrics.breakerState.set({ upstream: name }, breakerStateValue[to]);
    metrics.breakerTransitions.inc({ upstream: name, to });
    logger[to === 'open' ? 'warn' : 'info']({ upstream: name, breaker: to }, 'upstream circuit breaker changed state');
  });

  /** One HTTP exchange. Throws UpstreamUnavailableError for network errors and timeouts. */
  async function send(call: UpstreamCall): Promise<UpstreamResponse> {
    const endTimer = metrics.requestDuration.startTimer({ upstream: name, operation: call.operation });
    const init: OptionsInit = { method: call.method, responseType: 'buffer' };
    if (call.headers) init.headers = call.headers;
    if (call.searchParams) init.searchParams = call.searchParams;
    if (call.json !== undefined) init.json = call.json;
    if (call.form) init.form = call.form;
    if (call.body !== undefined) init.body = call.body;
    if (call.signal) init.signal = call.signal;
    // got's socket timeout is an idle timeout: an upload that keeps moving bytes is never cut by it.
    if (call.upload) init.timeout = { request: call.upload.deadlineMs, socket: call.upload.idleMs, response: call.upload.idleMs };
    let tooLarge = false;
    try {
      const request = http(call.path.replace(/^\/+/, ''), { ...init, isStream: false });
      // The announced length, or the bytes so far: cut before the answer is held whole.
      request.on('downloadProgress', ({ transferred, total }: { transferred: number; total?: number }) => {
        if (tooLarge || (transferred <= maxResponseBytes && (total ?? 0) <= maxResponseBytes)) return;
        tooLarge = true;
        request.cancel();
      });
      const response = (await request) as Response<Buffer>;
      endTimer({ status_code: String(response.statusCode) });
      return toUpstreamResponse(response);
    } catch (error) {
      endTimer({ status_code: 'error' });
      if (tooLarge && !call.signal?.aborted) throw new UpstreamUnavailableError(name, 'network', { detail: `the answer is larger than ${maxResponseBytes} bytes` });
      throw attemptError(error, call);
    }
  }

  function attemptError(error: unknown, call: UpstreamCall): unknown {
    // The caller gave up, or the call's deadline passed (execute() says which): neither is retried here.
    if (call.signal?.aborted) return call.signal.reason instanceof Error ? call.signal.reason : error;
    if (!(error instanceof RequestError)) return error;
    // Only the code and got's message travel on: got errors carry the request options (headers).
    const detail = error instanceof TimeoutError ? `timeout awaiting ${error.event}` : error.code;
    const cause = Object.assign(new Error(error.message), { code: error.code });
    const connectPhase = error instanceof TimeoutError ? CONNECT_TIMEOUT_EVENTS.has(error.event) : CONNECT_ERROR_CODES.has(error.code);
    if (connectPhase) upstreamDns.forget(); // ecosystem.md §4.3: re-resolve instead of waiting out the TTL
    return new UpstreamUnavailableError(name, error instanceof TimeoutError ? 'timeout' : 'network', { detail, cause });
  }

  function breakerOpen(): UpstreamUnavailableError {
    const retryAfterMs = Math.max(0, Math.ceil(openedAt + halfOpenAfterMs - Date.now()));
    return new UpstreamUnavailableError(name, 'breaker_open', { retryAfterMs });
  }

  /**
   * retry(breaker(attempt)) under one budget: when `callDeadlineMs` runs out, the attempt in
   * flight is aborted and no retry starts; the caller sees a timeout (counted by the breaker as
   * one failed attempt), never a wait of attempts × request timeout.
   */
  async function execute(call: UpstreamCall, onAttempt: () => void): Promise<UpstreamResponse> {
    const deadlineMs = positive(call.upload?.deadlineMs, callDeadlineMs);
    const deadline = AbortSignal.timeout(deadlineMs);
    const signal = call.signal ? AbortSignal.any([call.signal, deadline]) : deadline;
    const bounded: UpstreamCall = { ...call, signal };
    const attempt = () =>
      breaker.execute(async () => {
        onAttempt();
        try {
          return await send(bounded);
        } catch (error) {
          if (deadline.aborted && !call.signal?.aborted) throw deadlineExceeded(error, deadlineMs);
          throw error;
        }
      }, signal);
    try {
      if (!call.idempotent || maxRetries === 0) return await attempt();
      const policy = retry(retryable, { maxAttempts: maxRetries, backoff });
      policy.onRetry(() => metrics.retries.inc({ upstream: name, operation: call.operation }));
      return await policy.execute(attempt, signal);
    } catch (error) {
      // Cancelled between attempts (cockatiel's own error) or before one started.
      if (deadline.aborted && !call.signal?.aborted && !(error instanceof UpstreamUnavailableError)) throw deadlineExceeded(error, deadlineMs);
      throw error;
    }
  }

  function deadlineExceeded(cause: unknown, deadlineMs: number): UpstreamUnavailableError {
    return new UpstreamUnavailableError(name, 'timeout', { detail: `no answer within the call deadline of ${deadlineMs} ms`, cause });
  }

  logger.info(
    { upstream: name, origin: base.origin, hostKind: upstreamDns.kind, dnsMaxTtlSeconds: upstreamDns.maxTtlSeconds, maxRetries },
    'upstream client ready',
  );

  return {
    name,
    dnsCache: upstreamDns.cache,
    breakerState: () => stateName(breaker.state),
    async request(call) {
      const started = performance.now();
      let attempts = 0;
      let outcome: UpstreamOutcome = 'network_error';
      let status: number | undefined;
      try {
        const response = await execute(call, () => attempts++);
        status = response.status;
        outcome = outcomeOfStatus(status);
        return response;
      } catch (error) {
        const thrown = error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError ? breakerOpen() : error;
        outcome = outcomeOfError(thrown, call);
        throw thrown;
      } finally {
        metrics.requests.inc({ upstream: name, operation: call.operation, outcome });
        // Never headers, bodies, query or path: they carry tokens, secrets and codes.
        logger.debug(
          { upstream: name, operation: call.operation, method: call.method, status, outcome, attempts, ms: Math.round(performance.now() - started) },
          'upstream call',
        );
      }
    },
    close() {
      unwatchDns();
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

function outcomeOfStatus(status: number): UpstreamOutcome {
  if (status === 429) return 'throttled';
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'client_error';
  return 'ok';
}

function outcomeOfError(error: unknown, call: UpstreamCall): UpstreamOutcome {
  if (call.signal?.aborted) return 'aborted';
  if (!(error instanceof UpstreamUnavailableError)) return 'network_error';
  switch (error.reason) {
    case 'breaker_open':
      return 'breaker_open';
    case 'timeout':
      return 'timeout';
    case 'server_error':
      return 'server_error';
    default:
      return 'network_error';
  }
}

function toUpstreamResponse(response: Response<Buffer>): UpstreamResponse {
  const rawBody = response.rawBody ?? response.body;
  const text = rawBody.toString('utf8');
  let body: unknown = text;
  if (JSON_CONTENT_TYPE.test(response.headers['content-type'] ?? '') && text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text; // tolerated: a JSON content type with a body that is not JSON
    }
  }
  return { status: response.statusCode, headers: { ...response.headers }, body, rawBody };
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1_000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
