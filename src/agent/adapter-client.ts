import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../infra/logger.js';
import { createConfiguredUpstreamClient, UpstreamUnavailableError, type UpstreamCall, type UpstreamResponse } from '../infra/upstream-http.js';
import { createUpstreamMetrics } from '../infra/upstream-metrics.js';

/**
 * passgate's client of the partner's adapter (SPEC §5): a decrypt job's two callbacks,
 * `uploadResult` (JSON) and, on success, `uploadDecrypted` (the plaintext as a multipart file part
 * streamed from the spool file). One attempt per call: the job runner owns the retries (backoff,
 * capped, until 2xx; the adapter is idempotent by jobId), so an outcome only says whether another
 * attempt is worth making. Never throws.
 */

export const UPLOAD_RESULT_PATH = '/adapter/v1/drm/uploadResult';
export const UPLOAD_DECRYPTED_PATH = '/adapter/v1/drm/uploadDecrypted';

export type AdapterJobResult = 'success' | 'denied' | 'not_drm' | 'corrupt' | 'error';

export type AdapterOutcome = { ok: true; status: number } | { ok: false; retryable: boolean; status?: number; reason: string };

export interface AdapterClient {
  uploadResult(body: { jobId: string; sessionId: string; fileId: string; result: AdapterJobResult; message: string }): Promise<AdapterOutcome>;
  /** Streams `path` from disk as the `file` part (bounded memory); `filename` for Content-Disposition. */
  uploadDecrypted(input: { jobId: string; fileId: string; path: string; filename: string }): Promise<AdapterOutcome>;
  /** Closes the keep-alive sockets (shutdown). */
  close(): void;
}

export interface AdapterClientDeps {
  config: Pick<Config, 'upstreams' | 'upstreamClient'>;
  logger: Logger;
  metricsRegistry: Registry;
  /**
   * The slowest adapter an upload waits for (default 1 MiB/s): the attempt's deadline is the
   * configured call deadline plus size / this rate (1 GB: ~17 min); a socket idle longer than
   * the request timeout plus the time to drain the bytes in flight fails it sooner.
   */
  minUploadBytesPerSecond?: number;
}

const DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND = 1024 * 1024;
/**
 * Bytes that may sit in socket buffers between the two ends (both kernels, any proxy): after the
 * last write the client sees no traffic while a slow adapter still reads them.
 */
const BYTES_IN_FLIGHT = 16 * 1024 * 1024;
/** "Later", like a 5xx: the request timed out at the adapter, or it throttles. */
const RETRYABLE_STATUSES = new Set([408, 429]);
/** How much of a refusal's body goes into `reason` (the job record, the log). */
const REASON_BODY_CHARS = 200;
/** A spool file that is gone or unreadable does not come back by retrying. */
const PERMANENT_FILE_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM']);

/** What one answer of the adapter means for the job: 2xx done; 5xx, 408, 429 again later; any other status final. */
export function adapterOutcomeOf(response: Pick<UpstreamResponse, 'status' | 'rawBody'>): AdapterOutcome {
  const { status } = response;
  if (status >= 200 && status < 300) return { ok: true, status };
  const retryable = status >= 500 || RETRYABLE_STATUSES.has(status);
  const said = response.rawBody.subarray(0, REASON_BODY_CHARS * 4).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, REASON_BODY_CHARS);
  return { ok: false, retryable, status, reason: `the adapter answered HTTP ${status}${said ? `: ${said}` : ''}` };
}

/**
 * The spool file as a Blob read in chunks while the request body is written. Node 20's
 * openAsBlob throws a bare "Unable to open file" (and opens a directory), so stat says why first.
 */
async function openDecrypted(path: string): Promise<Blob | Extract<AdapterOutcome, { ok: false }>> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return { ok: false, retryable: false, reason: 'the decrypted file is not a regular file' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, retryable: !PERMANENT_FILE_ERRORS.has(code), reason: `the decrypted file cannot be read (${code})` };
  }
  try {
    return await openAsBlob(path, { type: 'application/octet-stream' });
  } catch (error) {
    // It exists: more likely out of descriptors for now than forever unreadable.
    return { ok: false, retryable: true, reason: `the decrypted file cannot be opened (${(error as Error).message})` };
  }
}

export function createAdapterClient(deps: AdapterClientDeps): AdapterClient {
  const { config } = deps;
  const logger = deps.logger.child({ component: 'adapter-client' });
  const minRate = deps.minUploadBytesPerSecond ?? DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND;
  const http = createConfiguredUpstreamClient('adapter', config.upstreams.adapter.baseUrl, config.upstreamClient, {
    metrics: createUpstreamMetrics(deps.metricsRegistry),
    logger,
  });

  const msAtMinRate = (bytes: number) => Math.ceil((bytes / minRate) * 1000);
  const uploadTiming = (size: number) => ({
    deadlineMs: config.upstreamClient.callDeadlineMs + msAtMinRate(size),
    idleMs: config.upstreamClient.requestTimeoutMs + msAtMinRate(Math.min(size, BYTES_IN_FLIGHT)),
  });

  /** One attempt; network errors, timeouts, 5xx and an open breaker become retryable outcomes. */
  async function attempt(call: UpstreamCall, context: { jobId: string; bytes?: number }): Promise<AdapterOutcome> {
    let outcome: AdapterOutcome;
    try {
      outcome = adapterOutcomeOf(await http.request(call));
    } catch (error) {
      outcome =
        error instanceof UpstreamUnavailableError
          ? { ok: false, retryable: true, ...(error.response ? { status: error.response.status } : {}), reason: error.message }
          : { ok: false, retryable: false, reason: `passgate could not make the call: ${(error as Error).message}` };
      if (!(error instanceof UpstreamUnavailableError)) logger.error({ err: error, operation: call.operation, jobId: context.jobId }, 'adapter call failed inside passgate');
    }
    // Ids only: never the session id (it maps to a principal) nor the file's name.
    if (outcome.ok) logger.debug({ operation: call.operation, jobId: context.jobId, status: outcome.status, bytes: context.bytes }, 'adapter call delivered');
    else logger.warn({ operation: call.operation, jobId: context.jobId, status: outcome.status, retryable: outcome.retryable, reason: outcome.reason }, 'adapter call not delivered');
    return outcome;
  }

  return {
    uploadResult({ jobId, sessionId, fileId, result, message }) {
      return attempt(
        {
          operation: 'uploadResult',
          method: 'POST',
          path: UPLOAD_RESULT_PATH,
          headers: { accept: 'application/json' },
          json: { jobId, sessionId, fileId, result, message },
          idempotent: false, // the job runner retries, not the client
        },
        { jobId },
      );
    },

    async uploadDecrypted({ jobId, fileId, path, filename }) {
      const file = await openDecrypted(path);
      if (!(file instanceof Blob)) {
        logger.warn({ operation: 'uploadDecrypted', jobId, retryable: file.retryable, reason: file.reason }, 'adapter call not made');
        return file;
      }
      const form = new FormData();
      form.append('jobId', jobId);
      form.append('fileId', fileId);
      form.append('file', file, filename);
      return attempt(
        {
          operation: 'uploadDecrypted',
          method: 'POST',
          path: UPLOAD_DECRYPTED_PATH,
          headers: { accept: 'application/json' },
          body: form,
          idempotent: false,
          upload: uploadTiming(file.size),
        },
        { jobId, bytes: file.size },
      );
    },

    close: () => http.close(),
  };
}
