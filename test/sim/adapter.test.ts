/**
 * The simulator's partner adapter (SPEC §9): uploadResult and uploadDecrypted against a real
 * simulator on 127.0.0.1, what GET /sim/adapter/received lists, idempotence by jobId, input
 * validation, and the `adapter.failing` knob (the upstream `faults` and throttle do not apply).
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Received } from '../../src/sim/adapter/inbox.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const RESULT_PATH = '/adapter/v1/drm/uploadResult';
const DECRYPTED_PATH = '/adapter/v1/drm/uploadDecrypted';

const resultBody = (jobId: string, extra: Record<string, unknown> = {}) => ({
  jobId,
  sessionId: 'dsid-0123456789',
  fileId: 'file-1',
  result: 'success',
  message: 'decrypted',
  ...extra,
});

function postResult(f: SimFixture, body: unknown): Promise<Response> {
  return f.call(RESULT_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function decryptedForm(jobId: string, bytes: Buffer, filename = 'report.pdf'): FormData {
  const form = new FormData();
  form.append('jobId', jobId);
  form.append('fileId', 'file-1');
  form.append('file', new Blob([bytes]), filename);
  return form;
}

const postForm = (f: SimFixture, form: FormData) => f.call(DECRYPTED_PATH, { method: 'POST', body: form });
const received = async (f: SimFixture) => (await (await f.call('/sim/adapter/received')).json()) as Received[];
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function setRules(f: SimFixture, rules: object): Promise<void> {
  const response = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
  if (response.status !== 200) throw new Error(`sim config answered ${response.status}: ${await response.text()}`);
}

/** A raw multipart body, for shapes FormData cannot make (a cut-off body, a part order). */
function rawMultipart(parts: Array<{ name: string; filename?: string; value: string | Buffer }>, boundary: string, close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`;
    chunks.push(Buffer.from(`--${boundary}\r\ncontent-disposition: ${disposition}\r\n\r\n`), Buffer.from(part.value), Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

test('uploadResult is recorded once per jobId; a repeat answers 200 again and counts a delivery', async (t) => {
  const f = await withSim(t);
  const first = await postResult(f, resultBody('job-1'));
  t.is(first.status, 200);
  t.deepEqual(await first.json(), { jobId: 'job-1', deliveries: 1 });

  const denied = await postResult(f, resultBody('job-2', { result: 'denied', message: 'not entitled', sessionId: 'dsid-other' }));
  t.is(denied.status, 200);
  const repeat = await postResult(f, resultBody('job-1'));
  t.is(repeat.status, 200);
  t.deepEqual(await repeat.json(), { jobId: 'job-1', deliveries: 2 });

  const list = await received(f);
  t.deepEqual(list, [
    { kind: 'result', jobId: 'job-1', fileId: 'file-1', sessionId: 'dsid-0123456789', result: 'success', message: 'decrypted', deliveries: 2, receivedAt: new Date(f.clock.now()).toISOString() },
    { kind: 'result', jobId: 'job-2', fileId: 'file-1', sessionId: 'dsid-other', result: 'denied', message: 'not entitled', deliveries: 1, receivedAt: new Date(f.clock.now()).toISOString() },
  ]);
});

test('every documented result value is accepted', async (t) => {
  const f = await withSim(t);
  for (const result of ['success', 'denied', 'not_drm', 'corrupt', 'error']) {
    t.is((await postResult(f, resultBody(`job-${result}`, { result, message: '' }))).status, 200, result);
  }
  t.deepEqual((await received(f)).map((r) => r.kind === 'result' && r.result), ['success', 'denied', 'not_drm', 'corrupt', 'error']);
});

test('uploadResult: bad input is a 400 JSON error with the issues, and nothing is recorded', async (t) => {
  const f = await withSim(t);
  const cases: Array<[string, Promise<Response>]> = [
    ['unknown result', postResult(f, resultBody('job-1', { result: 'maybe' }))],
    ['extra field', postResult(f, resultBody('job-1', { userPrincipal: 'someone@corp.example' }))],
    ['missing sessionId', postResult(f, { jobId: 'job-1', fileId: 'file-1', result: 'success', message: '' })],
    ['empty jobId', postResult(f, resultBody(''))],
    ['message not a string', postResult(f, resultBody('job-1', { message: 42 }))],
    ['array body', postResult(f, [resultBody('job-1')])],
    ['not JSON', f.call(RESULT_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jobId":' })],
    ['form body', f.call(RESULT_PATH, { method: 'POST', body: new URLSearchParams({ jobId: 'job-1' }) })],
  ];
  for (const [name, pending] of cases) {
    const response = await pending;
    t.is(response.status, 400, name);
    t.regex(response.headers.get('content-type') ?? '', /^application\/json/, name);
    const body = (await response.json()) as { status: number; code: string; message: string };
    t.is(body.status, 400, name);
    t.is(body.code, 'invalid_request', name);
  }
  const unknownResult = (await (await postResult(f, resultBody('job-1', { result: 'maybe' }))).json()) as { issues: Array<{ path: string }> };
  t.deepEqual(unknownResult.issues.map((i) => i.path), ['result']);

  const tooLarge = await postResult(f, resultBody('job-1', { message: 'x'.repeat(70_000) }));
  t.is(tooLarge.status, 413);
  t.deepEqual(await received(f), []);
});

test('uploadDecrypted records the sha256, size and filename of the file part, once per jobId', async (t) => {
  const f = await withSim(t);
  const bytes = randomBytes(300_000);
  const first = await postForm(f, decryptedForm('job-1', bytes, 'quarterly report.pdf'));
  t.is(first.status, 200);
  t.deepEqual(await first.json(), { jobId: 'job-1', deliveries: 1 });
  const repeat = await postForm(f, decryptedForm('job-1', bytes, 'quarterly report.pdf'));
  t.is(repeat.status, 200);
  t.deepEqual(await repeat.json(), { jobId: 'job-1', deliveries: 2 });

  // A result and a decrypted upload of the same job are two records.
  t.is((await postResult(f, resultBody('job-1'))).status, 200);
  t.deepEqual(await received(f), [
    {
      kind: 'decrypted',
      jobId: 'job-1',
      fileId: 'file-1',
      filename: 'quarterly report.pdf',
      sha256: sha256(bytes),
      size: bytes.length,
      deliveries: 2,
      receivedAt: new Date(f.clock.now()).toISOString(),
    },
    { kind: 'result', jobId: 'job-1', fileId: 'file-1', sessionId: 'dsid-0123456789', result: 'success', message: 'decrypted', deliveries: 1, receivedAt: new Date(f.clock.now()).toISOString() },
  ]);
});

test('uploadDecrypted: an empty file counts; the file part may come before the fields', async (t) => {
  const f = await withSim(t);
  t.is((await postForm(f, decryptedForm('job-empty', Buffer.alloc(0)))).status, 200);

  const boundary = 'passgate-test-boundary';
  const body = rawMultipart(
    [
      { name: 'file', filename: 'first.bin', value: Buffer.from('file before fields') },
      { name: 'fileId', value: 'file-2' },
      { name: 'jobId', value: 'job-order' },
    ],
    boundary,
  );
  const response = await f.call(DECRYPTED_PATH, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
  t.is(response.status, 200);
  const list = await received(f);
  t.like(list[0], { kind: 'decrypted', jobId: 'job-empty', size: 0, sha256: sha256(Buffer.alloc(0)) });
  t.like(list[1], { kind: 'decrypted', jobId: 'job-order', fileId: 'file-2', filename: 'first.bin', size: 18, sha256: sha256(Buffer.from('file before fields')) });
});

test('uploadDecrypted streams a chunked body of unknown length through the hash', async (t) => {
  const f = await withSim(t);
  const boundary = 'passgate-stream-boundary';
  const head = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="jobId"\r\n\r\njob-big\r\n--${boundary}\r\ncontent-disposition: form-data; name="fileId"\r\n\r\nfile-big\r\n--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.bin"\r\ncontent-type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const chunk = randomBytes(1024 * 1024);
  const chunks = 32;
  const expected = createHash('sha256');
  for (let i = 0; i < chunks; i++) expected.update(chunk);

  const status = await new Promise<number>((resolve, reject) => {
    const req = request(new URL(DECRYPTED_PATH, f.url), { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    // No content-length: Node sends it chunked, as a streaming client would.
    let sent = 0;
    const write = () => {
      if (sent === 0) req.write(head);
      while (sent < chunks) {
        sent++;
        if (!req.write(chunk)) return void req.once('drain', write);
      }
      req.end(tail);
    };
    write();
  });
  t.is(status, 200);
  t.like((await received(f))[0], { kind: 'decrypted', jobId: 'job-big', fileId: 'file-big', size: chunks * chunk.length, sha256: expected.digest('hex') });
});

test('uploadDecrypted: bad input is a 400 JSON error, and nothing is recorded', async (t) => {
  const f = await withSim(t);
  const noFile = new FormData();
  noFile.append('jobId', 'job-1');
  noFile.append('fileId', 'file-1');
  const noJob = new FormData();
  noJob.append('fileId', 'file-1');
  noJob.append('file', new Blob(['x']), 'x.bin');
  const wrongPart = new FormData();
  wrongPart.append('jobId', 'job-1');
  wrongPart.append('fileId', 'file-1');
  wrongPart.append('document', new Blob(['x']), 'x.bin');
  const extraField = decryptedForm('job-1', Buffer.from('x'));
  extraField.append('sessionId', 'dsid-0123456789');
  const twoFiles = decryptedForm('job-1', Buffer.from('x'));
  twoFiles.append('file', new Blob(['y']), 'y.bin');
  const duplicateField = decryptedForm('job-1', Buffer.from('x'));
  duplicateField.append('jobId', 'job-2');
  const boundary = 'cut-off-boundary';

  const cases: Array<[string, Promise<Response>]> = [
    ['no file part', postForm(f, noFile)],
    ['no jobId', postForm(f, noJob)],
    ['file part under another name', postForm(f, wrongPart)],
    ['unknown field', postForm(f, extraField)],
    ['two file parts', postForm(f, twoFiles)],
    ['a field twice', postForm(f, duplicateField)],
    ['JSON instead of multipart', postResultTo(f, DECRYPTED_PATH)],
    ['multipart without a boundary', f.call(DECRYPTED_PATH, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x' })],
    [
      'a body cut off before its closing boundary',
      f.call(DECRYPTED_PATH, {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: rawMultipart([{ name: 'jobId', value: 'job-1' }, { name: 'fileId', value: 'file-1' }, { name: 'file', filename: 'x.bin', value: 'partial' }], boundary, false),
      }),
    ],
  ];
  for (const [name, pending] of cases) {
    const response = await pending;
    t.is(response.status, 400, name);
    const body = (await response.json()) as { code: string; issues: unknown[] };
    t.is(body.code, 'invalid_request', name);
    t.true(Array.isArray(body.issues) && body.issues.length > 0, name);
  }
  t.deepEqual(await received(f), []);
});

function postResultTo(f: SimFixture, path: string): Promise<Response> {
  return f.call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(resultBody('job-1')) });
}

test('adapter.failing: both endpoints answer 503 and record nothing until set back to false', async (t) => {
  const f = await withSim(t);
  await setRules(f, { adapter: { failing: true } });
  const result = await postResult(f, resultBody('job-1'));
  t.is(result.status, 503);
  t.like(await result.json(), { status: 503, code: 'adapter_unavailable' });
  const upload = await postForm(f, decryptedForm('job-1', randomBytes(2 * 1024 * 1024)));
  t.is(upload.status, 503);
  t.like(await upload.json(), { status: 503, code: 'adapter_unavailable' });
  t.deepEqual(await received(f), []);

  await setRules(f, { adapter: { failing: false } });
  t.is((await postResult(f, resultBody('job-1'))).status, 200);
  t.is((await postForm(f, decryptedForm('job-1', Buffer.from('plain')))).status, 200);
  t.deepEqual((await received(f)).map((r) => [r.kind, r.deliveries]), [['result', 1], ['decrypted', 1]]);
});

test('the upstream fault knobs and the Pass throttle do not apply to the adapter', async (t) => {
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 1 } });
  await setRules(f, { faults: { latencyMs: 0, errorRate: 1, outage: true } });
  // Many calls from one address: a Pass path would be throttled after the first.
  for (let i = 0; i < 5; i++) t.is((await postResult(f, resultBody(`job-${i}`))).status, 200);
  t.is((await postForm(f, decryptedForm('job-1', Buffer.from('plain')))).status, 200);
  t.is((await received(f)).length, 6);
});

test('received: adapter calls are in /sim/log, the control plane is not; DELETE and reset empty the list', async (t) => {
  const f = await withSim(t);
  await f.call('/sim/log', { method: 'DELETE' });
  t.is((await postResult(f, resultBody('job-1'))).status, 200);
  t.is((await postForm(f, decryptedForm('job-1', Buffer.from('plain')))).status, 200);
  t.is((await received(f)).length, 2);
  const log = (await (await f.call('/sim/log')).json()) as SimLogEntry[];
  t.deepEqual(log.map((e) => [e.method, e.path, e.operation, e.status]), [
    ['POST', RESULT_PATH, 'adapter.uploadResult', 200],
    ['POST', DECRYPTED_PATH, 'adapter.uploadDecrypted', 200],
  ]);

  t.is((await f.call('/sim/adapter/received', { method: 'DELETE' })).status, 204);
  t.deepEqual(await received(f), []);
  // A repeat after the list was emptied is a first delivery again.
  t.is((await postResult(f, resultBody('job-1'))).status, 200);
  t.like((await received(f))[0], { jobId: 'job-1', deliveries: 1 });
  await setRules(f, { reset: true });
  t.deepEqual(await received(f), []);
});

test('other methods on the adapter paths are 405', async (t) => {
  const f = await withSim(t);
  t.is((await f.call(RESULT_PATH)).status, 405);
  t.is((await f.call(DECRYPTED_PATH, { method: 'PUT', body: 'x' })).status, 405);
});
