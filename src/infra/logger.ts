import { pino, type DestinationStream, type LogFn, type Logger } from 'pino';
import { LogSampler } from './log-sampler.js';

export type { Logger };

/** Secret names: redacted where they are a line's own field, or a field of one of its fields. */
const SECRET_FIELDS = [
  'client_secret',
  'clientSecret',
  'access_token',
  'accessToken',
  'software_statement',
  'softwareStatement',
  'password',
  'deviceToken',
  'deviceSecret',
  'appKey',
  'app_key',
  // Single sign-on credentials of the /v1 SSO bodies (src/signin/schema.ts) and their upstream headers.
  'subjectToken',
  'serviceToken',
  'samlResponse',
  'SAMLResponse',
] as const;

const CENSOR = '[Redacted]';

/**
 * Every fixed place a secret can appear in a log line. Paths are fixed here (never from input);
 * pino replaces the value before serialisation, so a secret never reaches the stream. The
 * secrets one level down (`<any field>.<secret name>`) are redacted by redactNested below, not by
 * `*.` wildcard paths: @pinojs/redact walks every field of every line for those (measured: 24 µs a
 * line with them, under 6 µs without, and two lines per license request).
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-app-key"]',
  'req.headers["x-admin-key"]',
  'req.headers["ad-service-token"]',
  'req.headers["adobe-subject-token"]',
  'req.headers["ap-partner-framework-status"]',
  'req.headers["x-roku-reserved-roku-connect-token"]',
  'req.headers["ap-visitor-identifier"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'authorization',
  ...SECRET_FIELDS,
  'siteKey',
  'accessKey',
  'licenseToken',
  // A profile's user metadata (zip codes, household ids; src/signin/user-metadata.ts): never in a log line.
  'attributes',
  'profile.attributes',
];

const nestedSecrets: ReadonlySet<string> = new Set(SECRET_FIELDS);

/**
 * `<field>.<secret name>` for every field of the line that is a plain object (errors keep their
 * serializer; arrays are not searched, as with pino's wildcard paths). The line's own objects are
 * never changed: a field holding a secret is replaced by a censored copy.
 */
export function redactNested(line: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const name in line) {
    const value = line[name];
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Error) continue;
    let censored: Record<string, unknown> | undefined;
    for (const secret of nestedSecrets) {
      if (Object.hasOwn(value, secret)) (censored ??= { ...(value as Record<string, unknown>) })[secret] = CENSOR;
    }
    if (censored) (copy ??= { ...line })[name] = censored;
  }
  return copy ?? line;
}

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: DestinationStream;
  /** Repeated identical warn/error lines: one per kind per this many ms, with a count (log-sampler.ts); 0 = every line. */
  sampleIntervalMs?: number;
  /** Tests inject a manual clock for the sampler. */
  now?: () => number;
}

/** The default interval of repeated identical warn/error lines (PASSGATE_LOG_SAMPLE_INTERVAL_MS). */
export const DEFAULT_SAMPLE_INTERVAL_MS = 10_000;

const samplers = new WeakMap<Logger, LogSampler>();

export function createLogger(options: LoggerOptions = {}): Logger {
  const intervalMs = options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
  const sampler = intervalMs > 0 ? new LogSampler({ intervalMs, ...(options.now ? { now: options.now } : {}) }) : undefined;
  const logger = pino(
    {
      level: options.level ?? 'info',
      ...(options.name ? { name: options.name } : {}),
      redact: { paths: redactPaths, censor: CENSOR },
      formatters: { log: redactNested },
      serializers: { err: serializeError },
      base: { pid: process.pid },
      timestamp: isoTime,
      ...(sampler ? { hooks: { logMethod: sampledLogMethod(sampler) } } : {}),
    },
    options.destination ?? batchedStdout(),
  );
  if (sampler) samplers.set(logger, sampler);
  return logger;
}

/**
 * pino's `time` field (ISO 8601, as pino.stdTimeFunctions.isoTime writes it), formatted once per
 * millisecond: under load several lines share a millisecond, and formatting a Date was a visible
 * share of a line's cost (two lines per license request).
 */
let stampedAt = Number.NaN;
let stamp = '';
export function isoTime(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

/**
 * stdout for pino: lines written in batches of ≥ 4 KB, at least every 100 ms (one write per line
 * cost more than formatting it under load; pino flushes what is left on exit). sonic-boom holds
 * the batch as Buffers: in its default string mode every line re-measured the whole pending batch
 * (Buffer.byteLength of a string growing to 16 KB while a write is in flight), which made a line's
 * cost grow with the batch.
 */
function batchedStdout(): DestinationStream {
  const boom = pino.destination({ fd: 1, sync: false, minLength: 4096, periodicFlush: 100, contentMode: 'buffer' });
  const writeBuffer = boom.write.bind(boom) as unknown as (chunk: Buffer) => boolean;
  // pino writes strings; in buffer mode sonic-boom takes Buffers.
  boom.write = (line: string) => writeBuffer(Buffer.from(line, 'utf8'));
  return boom;
}

/**
 * Writes the lines pino batched (see createLogger) now, synchronously: for the rare lines that must
 * survive a SIGKILL a moment later (a partner agent decision). A destination without a synchronous
 * flush (a test stream) has nothing held back.
 */
export function flushNow(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym];
  try {
    stream?.flushSync?.();
  } catch {
    // Not open yet, or closed while shutting down: pino's exit flush covers the line.
  }
}

/** Writes the sampled lines still held back (their counts), e.g. before the process exits. */
export function flushSampledLines(logger: Logger): void {
  samplers.get(logger)?.finish();
}

/** pino's warn level; sampling applies from it up. */
const WARN = 40;
/** The access log line: one per request by design, never sampled. */
const ACCESS_LOG_MSG = 'request';

function sampledLogMethod(sampler: LogSampler) {
  return function (this: Logger, args: Parameters<LogFn>, method: LogFn, level: number): void {
    const [first, ...rest] = args as unknown[];
    const fields = typeof first === 'object' && first !== null && !(first instanceof Error) ? (first as Record<string, unknown>) : undefined;
    const msg = first instanceof Error ? (rest[0] ?? first.message) : fields ? rest[0] : first;
    if (level < WARN || msg === ACCESS_LOG_MSG) {
      method.apply(this, args);
      return;
    }
    const err = first instanceof Error ? first : fields?.err;
    const kind = `${level}|${String(msg)}|${errorKind(err)}|${typeof fields?.code === 'string' ? fields.code : ''}`;
    // A held-back line is written when its interval ends: `lastAt` says when it happened.
    const at = new Date().toISOString();
    sampler.offer(kind, (suppressed) => {
      if (suppressed === 0) {
        method.apply(this, args);
        return;
      }
      const extra = { suppressed, lastAt: at };
      const counted = first instanceof Error ? [{ err: first, ...extra }, ...rest] : fields ? [{ ...fields, ...extra }, ...rest] : [extra, ...args];
      method.apply(this, counted as Parameters<LogFn>);
    });
  };
}

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  status?: unknown;
  errors?: unknown;
}

/** What makes two errors "identical" for sampling: class, code and message (not the stack). */
function errorKind(err: unknown): string {
  if (typeof err !== 'object' || err === null) return err === undefined ? '' : String(err).slice(0, 200);
  const e = err as ErrorLike;
  return `${className(err)}:${String(e.code ?? '')}:${String(e.message ?? '').slice(0, 200)}`;
}

/** Network failures of a dependency that is down or restarting: expected, the message says it all. */
const expectedCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CLOSED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  // The problem codes of conditions passgate answers for by design (problem.ts).
  'store_unavailable',
  'upstream_unavailable',
  'upstream_throttled',
  'rate_limited',
  'license_service_unavailable',
  'not_ready',
]);
/** Error classes of a store, breaker or client that is down, closed or reconnecting. */
const expectedNames = new Set([
  'StoreUnavailableError',
  'BrokenCircuitError',
  'IsolatedCircuitError',
  'TaskCancelledError',
  'ClientClosedError',
  'ClientOfflineError',
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'ReconnectStrategyError',
  'AbortError',
]);

/**
 * Expected conditions (a dependency down, a rate limit, a store unavailable) are logged as
 * their class, code and message, without a stack: the stack says nothing new and a short outage
 * wrote thousands of them. Anything else keeps pino's full serialisation (stack, cause).
 */
export function isExpectedError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as ErrorLike;
  if (typeof e.code === 'string' && expectedCodes.has(e.code)) return true;
  const name = className(err);
  if (expectedNames.has(name) || name.endsWith('TimeoutError')) return true;
  if (e.status === 429 || e.status === 503) return true;
  // Node's connect errors may be an AggregateError of one failure per address.
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isExpectedError);
}

/** `name`, or the class when it left `name` as plain 'Error' (node-redis's errors do). */
function className(err: object): string {
  const e = err as ErrorLike;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const ctor = (err as { constructor?: { name?: unknown } }).constructor?.name;
  return name === 'Error' && typeof ctor === 'string' && ctor !== '' && ctor !== 'Object' ? ctor : name;
}

function serializeError(err: unknown): unknown {
  if (!isExpectedError(err)) return pino.stdSerializers.err(err as Error);
  const e = err as ErrorLike;
  const nested = Array.isArray(e.errors) ? e.errors.map((inner: ErrorLike) => String(inner.message ?? '')).filter(Boolean) : [];
  const message = String(e.message ?? '') || nested.join('; ');
  return { type: className(err as object), ...(typeof e.code === 'string' ? { code: e.code } : {}), message };
}
