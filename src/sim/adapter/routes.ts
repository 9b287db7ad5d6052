import Router from '@koa/router';
import type { Context } from 'koa';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import type { SimState } from '../state.js';
import { ADAPTER_RESULTS } from './inbox.js';
import { drain, readHashedMultipart } from './multipart.js';

/**
 * The partner adapter passgate's agent calls back (SPEC §5, §9): `uploadResult` (JSON) and
 * `uploadDecrypted` (multipart, the plaintext as the file part `file`), both idempotent by jobId;
 * what arrived is listed at `GET /sim/adapter/received`. With `rules.adapter.failing` both
 * answer 503 and record nothing. The Kakao i schema is unconfirmed (drm.md §5), so this holds
 * passgate to SPEC §5's contract strictly: unknown or missing fields are a 400.
 */

export const UPLOAD_RESULT_PATH = '/adapter/v1/drm/uploadResult';
export const UPLOAD_DECRYPTED_PATH = '/adapter/v1/drm/uploadDecrypted';
export const RECEIVED_PATH = '/sim/adapter/received';

/** A result is five short strings. */
const MAX_JSON_BYTES = 64 * 1024;

const id = z.string().min(1).max(256);
/** SPEC §5 file ids: up to 1024 bytes of UTF-8 (as passgate's agent takes them). */
const fileId = z.string().min(1).refine((value) => Buffer.byteLength(value) <= 1024, { error: 'expected at most 1024 bytes' });
const resultBody = z.strictObject({
  jobId: id,
  sessionId: id,
  fileId,
  result: z.enum(ADAPTER_RESULTS),
  message: z.string().max(4096),
});
const decryptedFields = z.strictObject({ jobId: id, fileId });

interface Issue {
  path: string;
  message: string;
}

function answerError(ctx: Context, status: number, code: string, message: string, issues?: Issue[]): void {
  ctx.status = status;
  ctx.body = { status, code, message, ...(issues ? { issues } : {}) };
}

const issuesOf = (error: z.ZodError): Issue[] => error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));

/** The body as text, or undefined past `limit` bytes (the rest is drained, not kept). */
function readLimited(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    const done = () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString('utf8'));
    req.once('end', done);
    req.once('close', done);
  });
}

/** The fault knob: answered before anything is recorded; the body is read so the client sees the 503. */
async function refusedWhileFailing(ctx: Context, state: SimState): Promise<boolean> {
  if (!state.rules.adapter.failing) return false;
  await drain(ctx.req);
  answerError(ctx, 503, 'adapter_unavailable', 'The adapter is failing (rules.adapter.failing); nothing was recorded.');
  return true;
}

export function adapterRoutes(state: SimState): Router {
  const router = new Router();

  router.post('adapter.uploadResult', UPLOAD_RESULT_PATH, async (ctx: Context) => {
    if (await refusedWhileFailing(ctx, state)) return;
    if (!ctx.is('application/json')) {
      await drain(ctx.req);
      return answerError(ctx, 400, 'invalid_request', 'The body must be application/json.');
    }
    const text = await readLimited(ctx.req, MAX_JSON_BYTES);
    if (text === undefined) return answerError(ctx, 413, 'invalid_request', `The body exceeds ${MAX_JSON_BYTES} bytes.`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return answerError(ctx, 400, 'invalid_request', 'The body is not JSON.');
    }
    const body = resultBody.safeParse(json);
    if (!body.success) return answerError(ctx, 400, 'invalid_request', 'Expected {jobId, sessionId, fileId, result, message}.', issuesOf(body.error));
    const record = state.adapter.deliver({ kind: 'result', ...body.data }, state.now());
    ctx.body = { jobId: record.jobId, deliveries: record.deliveries };
  });

  router.post('adapter.uploadDecrypted', UPLOAD_DECRYPTED_PATH, async (ctx: Context) => {
    if (await refusedWhileFailing(ctx, state)) return;
    const reading = await readHashedMultipart(ctx.req, 'file');
    if (!reading.ok) {
      return answerError(ctx, 400, 'invalid_request', 'Expected multipart/form-data with fields jobId, fileId and the file part file.', reading.problems.map((message) => ({ path: '', message })));
    }
    const fields = decryptedFields.safeParse(reading.fields);
    if (!fields.success) return answerError(ctx, 400, 'invalid_request', 'Expected the fields jobId and fileId, and nothing else.', issuesOf(fields.error));
    if (!reading.file) return answerError(ctx, 400, 'invalid_request', 'The file part "file" is missing.', [{ path: 'file', message: 'required' }]);
    const record = state.adapter.deliver({ kind: 'decrypted', ...fields.data, ...reading.file }, state.now());
    ctx.body = { jobId: record.jobId, deliveries: record.deliveries };
  });

  router.get('sim.adapter.received', RECEIVED_PATH, (ctx: Context) => {
    ctx.body = state.adapter.list();
  });

  router.delete('sim.adapter.received.clear', RECEIVED_PATH, (ctx: Context) => {
    state.adapter.clear();
    ctx.status = 204;
  });

  return router;
}
