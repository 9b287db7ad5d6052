import { parse as parseJson } from '@hapi/bourne';
import inflate from 'inflation';
import getRawBody from 'raw-body';
import type { AppContext, AppMiddleware } from './context.js';
import { Problem } from './problem.js';

/**
 * Request bodies, one set of rules for every reader (JSON and form via co-body, raw challenges,
 * the activation forms): `Content-Encoding` gzip/deflate/br is decoded and the size limit applies
 * to the decoded bytes (a bomb is 413); a body that does not decode is 400 invalid_body; any
 * other encoding is 415. Everything a client can get wrong here is a 4xx Problem, never a 500.
 */

/** The error shapes of co-body / raw-body / inflation / http-errors (duck-typed: several copies). */
interface BodyError extends Error {
  status?: number;
  statusCode?: number;
  type?: string;
  limit?: number;
  code?: string;
  errno?: number;
  expose?: boolean;
}

/** zlib's own stream errors (gzip/deflate: Z_DATA_ERROR, Z_BUF_ERROR…; brotli: ERR__ERROR_…). */
function isDecodeError(err: BodyError): boolean {
  return typeof err.errno === 'number' && typeof err.code === 'string' && /^(Z_|ERR__ERROR_|ERR_BROTLI)/.test(err.code);
}

/** The Problem for an error raised while reading a request body; undefined when it is not a body error. */
export function bodyProblem(error: unknown): Problem | undefined {
  if (error instanceof Problem) return error;
  const err = error as BodyError | undefined;
  if (!err || typeof err !== 'object') return undefined;
  if (isDecodeError(err)) {
    return new Problem('invalid_body', 'The request body does not decode with its Content-Encoding (malformed or truncated).');
  }
  const status = typeof err.status === 'number' ? err.status : err.statusCode;
  if (err.type === 'entity.too.large' || status === 413) {
    return new Problem('payload_too_large', err.limit ? `The request body is larger than ${err.limit} bytes (decoded).` : 'The request body is too large.');
  }
  if (status === 415) {
    // inflation's "Unsupported Content-Encoding: x", raw-body's unsupported charset: short and about the request itself.
    return new Problem('unsupported_media_type', err.message ? err.message.slice(0, 200) : 'The request body has an unsupported type or encoding.');
  }
  // co-body parses with @hapi/bourne, which refuses a `__proto__` key (prototype poisoning) with
  // a SyntaxError of its own: valid JSON, refused on purpose, so say so rather than "not JSON".
  if (err instanceof SyntaxError && /forbidden prototype property/.test(err.message)) {
    return new Problem('invalid_body', 'The JSON body has a key named __proto__: such keys are refused (anywhere in the body).', {
      errors: [{ path: '(body)', message: 'a key named __proto__ is refused' }],
    });
  }
  // co-body marks a JSON syntax error only by its class and status (no `type`).
  if (err instanceof SyntaxError || err.type === 'entity.parse.failed') {
    return new Problem('invalid_json', 'The request body is not valid JSON (an object or an array is expected).');
  }
  if (err.type === 'request.size.invalid') return new Problem('invalid_body', 'The request body is shorter or longer than its Content-Length.');
  if (err.type === 'request.aborted') return new Problem('invalid_body', 'The request body was cut off before its end.');
  // The client hung up before the body could be read (raw-body finds the stream already ended).
  if (err.type === 'stream.not.readable') return new Problem('invalid_body', 'The request body could not be read: the connection ended.');
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new Problem('invalid_body', err.expose && err.message ? err.message.slice(0, 200) : 'The request body could not be read.');
  }
  return undefined;
}

/** The request's content coding, normalised in place: codings are case-insensitive (RFC 9110 §8.4.1), the decoders know lower case. */
function contentCoding(ctx: AppContext): string {
  const coding = ctx.req.headers['content-encoding'];
  if (coding === undefined) return 'identity';
  const normalised = coding.trim().toLowerCase();
  ctx.req.headers['content-encoding'] = normalised;
  return normalised || 'identity';
}

/** Runs a body parser on its own (not around the rest of the chain), so only its failures become body problems. */
export function readBodyWith(parse: AppMiddleware): AppMiddleware {
  return async (ctx, next) => {
    contentCoding(ctx);
    try {
      await parse(ctx, async () => {});
    } catch (error) {
      throw bodyProblem(error) ?? error;
    }
    await next();
  };
}

/** `application/json`, bare or with charset utf-8: the type every app sends, which jsonBody reads itself. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
/** co-body's strict mode: a JSON body is an object or an array. */
const OBJECT_OR_ARRAY = /^[ \t\n\r]*[[{]/;

/**
 * JSON bodies on the hot path (every license request carries one): read with raw-body and parsed with
 * bourne — what co-body does underneath — without @koa/bodyparser's type matching, option cloning and
 * decoder stream, which cost more than the read itself. Same rules as the general parser: an object or
 * an array, `{}` for an empty body, a `__proto__` key refused, `limitBytes` decoded bytes. Any other
 * request (a form, a Content-Encoding, another JSON type, a method without a body) goes to `general`.
 */
export function jsonBody(limitBytes: number, general: AppMiddleware): AppMiddleware {
  return async (ctx, next) => {
    const { headers, method } = ctx.req;
    const type = headers['content-type'];
    if (type === undefined || headers['content-encoding'] !== undefined || (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') || !PLAIN_JSON.test(type)) {
      return general(ctx, next);
    }
    let text: string;
    try {
      const length = headers['content-length'];
      text = await getRawBody(ctx.req, { limit: limitBytes, encoding: 'utf8', ...(length !== undefined ? { length } : {}) });
    } catch (error) {
      throw bodyProblem(error) ?? error;
    }
    if (text === '') {
      ctx.request.body = {};
    } else {
      if (!OBJECT_OR_ARRAY.test(text)) throw new Problem('invalid_json', 'The request body is not valid JSON (an object or an array is expected).');
      try {
        ctx.request.body = parseJson(text, { protoAction: 'error' });
      } catch (error) {
        throw bodyProblem(error) ?? error;
      }
    }
    await next();
  };
}

/** The whole decoded body as bytes, at most `limit` decoded bytes; a Problem on any client fault. */
export async function readRawBody(ctx: AppContext, limit: number): Promise<Buffer> {
  const encoding = contentCoding(ctx);
  try {
    // inflation reads the (normalised) header: gzip/deflate/br decoded, identity as is, else a 415 error.
    const stream = inflate(ctx.req);
    // The declared length is only the decoded length when nothing is decoded.
    const length = encoding === 'identity' ? ctx.get('content-length') || undefined : undefined;
    return await getRawBody(stream, { limit, ...(length ? { length } : {}) });
  } catch (error) {
    throw bodyProblem(error) ?? error;
  }
}
