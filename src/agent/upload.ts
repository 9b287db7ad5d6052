import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';

/** Why an upload was refused; the route maps each to its problem. */
export class UploadError extends Error {
  constructor(
    readonly reason: 'not_multipart' | 'too_large' | 'malformed' | 'aborted' | 'spool',
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

export interface ReceivedUpload {
  /** The `fileId` form field. */
  fileId: string;
  /** The file part's name in the spool dir (`<name>.upload`). */
  file: string;
  bytes: number;
}

/** Multipart overhead allowed on top of the file limit before a Content-Length is refused unread. */
const MULTIPART_SLACK = 64 * 1024;

/**
 * Streams a `multipart/form-data` decrypt request (field `fileId`, file part `file`) to the spool
 * dir with bounded memory (`name` is the job id): the file part goes to `<name>.upload.part` as it arrives and is renamed
 * once complete, so a cut upload never looks like a finished one. Anything that fails removes
 * the partial file.
 */
export async function receiveUpload(req: IncomingMessage, spoolDir: string, maxBytes: number, name: string): Promise<ReceivedUpload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*(;|$)/i.test(type)) throw new UploadError('not_multipart', 'The body must be multipart/form-data with a fileId field and a file part.');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes + MULTIPART_SLACK) throw new UploadError('too_large', `The file is larger than ${maxBytes} bytes.`);

  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: req.headers, limits: { files: 1, fields: 4, parts: 6, fieldSize: 4096, fileSize: maxBytes + 1, headerPairs: 20 } });
  } catch (error) {
    throw new UploadError('malformed', `The multipart body cannot be read: ${(error as Error).message}.`);
  }
  const part = join(spoolDir, `${name}.upload.part`);
  let fileId: string | undefined;
  let bytes = 0;
  let failure: UploadError | undefined;
  let writing: Promise<void> | undefined;
  let fileStream: Readable | undefined;
  let out: WriteStream | undefined;
  let stop: ((error: UploadError) => void) | undefined;
  // The first refusal ends the upload at once: nothing more is read into the spool.
  const fail = (error: UploadError) => {
    failure ??= error;
    stop?.(failure);
  };

  parser.on('field', (field, value, info) => {
    if (field !== 'fileId') return fail(new UploadError('malformed', `Unexpected form field ${JSON.stringify(field.slice(0, 64))}: only fileId and file.`, field));
    if (info.valueTruncated) return fail(new UploadError('malformed', 'The fileId field is too long.', 'fileId'));
    if (fileId !== undefined) return fail(new UploadError('malformed', 'The fileId field is given twice.', 'fileId'));
    fileId = value;
  });
  parser.on('file', (field, stream) => {
    if (field !== 'file' || writing) {
      stream.resume();
      return fail(new UploadError('malformed', field !== 'file' ? `Unexpected file part ${JSON.stringify(field.slice(0, 64))}: the file goes in the part named file.` : 'Only one file part is allowed.', field));
    }
    fileStream = stream;
    // busboy stops at fileSize bytes and says so: with maxBytes + 1, that is a file over the limit.
    stream.on('limit', () => fail(new UploadError('too_large', `The file is larger than ${maxBytes} bytes.`, 'file')));
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    out = createWriteStream(part, { flags: 'wx', mode: 0o600 });
    writing = pipeline(stream, out).catch((error: unknown) => {
      fail(new UploadError('spool', `The upload cannot be stored: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`));
    });
  });
  for (const limit of ['partsLimit', 'filesLimit', 'fieldsLimit'] as const) parser.on(limit, () => fail(new UploadError('malformed', 'The multipart body has too many parts.')));

  try {
    await new Promise<void>((resolve, reject) => {
      stop = reject;
      parser.on('close', resolve);
      parser.on('error', (error: Error) => reject(new UploadError('malformed', `The multipart body is malformed: ${error.message}.`)));
      req.on('aborted', () => reject(new UploadError('aborted', 'The upload was cut before it ended.')));
      req.on('error', () => reject(new UploadError('aborted', 'The upload was cut before it ended.')));
      req.pipe(parser);
    });
    await writing;
    if (failure) throw failure;
    if (!writing) throw new UploadError('malformed', 'The file part is missing (multipart part named file).', 'file');
    if (fileId === undefined) throw new UploadError('malformed', 'The fileId field is missing.', 'fileId');
    const file = `${name}.upload`;
    await rename(part, join(spoolDir, file)).catch((error: unknown) => {
      throw new UploadError('spool', `The upload cannot be stored: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`);
    });
    return { fileId, file, bytes };
  } catch (error) {
    req.unpipe(parser);
    fileStream?.destroy();
    parser.destroy();
    // The rest of the body is read and dropped (bounded by the server's request deadline), so the answer reaches the client.
    req.resume();
    // The spool file is closed before it is removed. Not through the pipeline's promise: a file
    // stream busboy cut at the limit never ends, so that promise may never settle.
    if (out && !out.closed) {
      const closed = once(out, 'close').catch(() => undefined);
      out.destroy();
      await closed;
    }
    await unlink(part).catch(() => undefined);
    throw error instanceof UploadError ? error : new UploadError('malformed', `The multipart body cannot be read: ${(error as Error).message}.`);
  }
}
