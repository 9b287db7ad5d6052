import busboy from 'busboy';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream/promises';

/**
 * Reads a multipart/form-data body as it streams in: small text fields are kept, the one file
 * part is only hashed (SHA-256) and counted, so a 1 GB upload costs a few chunks of memory.
 */

export interface HashedFile {
  filename: string;
  sha256: string;
  size: number;
}

export type MultipartReading =
  | { ok: true; fields: Record<string, string>; file: HashedFile | undefined }
  | { ok: false; problems: string[] };

/** The fields are ids: short. Beyond these limits busboy drops the part and the upload is refused. */
const LIMITS = { fields: 8, fieldNameSize: 64, fieldSize: 4096, files: 1, parts: 9 };

/** Reads the rest of a body that will not be used, so the answer reaches a client still sending. */
export async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  req.resume();
  await finished(req).catch(() => undefined);
}

/** Reads the whole body (never throws); `fileField` names the one file part expected. */
export async function readHashedMultipart(req: IncomingMessage, fileField: string): Promise<MultipartReading> {
  let parser: busboy.Busboy;
  try {
    // Filenames arrive as raw UTF-8 (fetch, got, browsers); busboy's default would read them as Latin-1.
    parser = busboy({ headers: req.headers, limits: LIMITS, defParamCharset: 'utf8' });
  } catch (error) {
    // Not multipart, or no boundary.
    await drain(req);
    return { ok: false, problems: [`expected a multipart/form-data body (${(error as Error).message})`] };
  }

  const fields: Record<string, string> = {};
  const problems: string[] = [];
  const hashing: Promise<void>[] = [];
  let file: HashedFile | undefined;

  parser.on('field', (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) problems.push(`field ${JSON.stringify(name)} is longer than ${LIMITS.fieldSize} bytes`);
    else if (Object.hasOwn(fields, name)) problems.push(`field ${JSON.stringify(name)} is given twice`);
    else fields[name] = value;
  });
  parser.on('file', (name, stream, info) => {
    if (name !== fileField) {
      problems.push(`unexpected file part ${JSON.stringify(name)} (expected ${JSON.stringify(fileField)})`);
      stream.resume();
      return;
    }
    const hash = createHash('sha256');
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
    });
    // Never rejects: a part cut short is a problem of this upload, not an unhandled rejection later.
    hashing.push(
      finished(stream).then(
        () => {
          file = { filename: info.filename ?? '', sha256: hash.digest('hex'), size };
        },
        (error: Error) => {
          problems.push(`the file part ended early: ${error.message}`);
        },
      ),
    );
  });
  parser.on('filesLimit', () => problems.push('more than one file part'));
  parser.on('fieldsLimit', () => problems.push(`more than ${LIMITS.fields} fields`));
  parser.on('partsLimit', () => problems.push(`more than ${LIMITS.parts} parts`));

  const parsed = new Promise<void>((resolve, reject) => {
    parser.once('close', resolve);
    parser.once('error', reject);
    // pipe() does not pass the source's end on when the client goes away: the parser would wait forever.
    req.once('close', () => {
      if (!req.complete) reject(new Error('the client went away before the body ended'));
    });
  });
  req.pipe(parser);
  try {
    await parsed;
    await Promise.all(hashing);
  } catch (error) {
    req.unpipe(parser);
    await drain(req);
    return { ok: false, problems: [`unreadable multipart body: ${(error as Error).message}`] };
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, fields, file };
}
