import test, { type ExecutionContext } from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { FileRegistry } from '../../src/agent/files.js';
import { createLogger } from '../../src/infra/logger.js';
import { createStore } from '../../src/infra/store.js';
import { withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';
import {
  OTHER_PARTNER_SECRET,
  agentClient,
  agentFile,
  bytesFile,
  delivered,
  jobState,
  newSession,
  protectFile,
  randomFile,
  received,
  sha256,
  KEYS,
} from './agent-fixture.js';

/**
 * The partner agent end to end over HTTP (SPEC §5): a real passgate, the real simulator as the
 * partner's adapter, envelopes made with the codec, the file registry written through the store
 * the service reads.
 */

async function withAgent(t: ExecutionContext, agent: Record<string, unknown> = agentFile()) {
  const f = await withPassgate(t, { file: { agent } });
  const store = await createStore({ dataDir: f.dataDir, logger: createLogger({ level: 'silent' }) });
  t.teardown(() => store.disconnect());
  return { f, files: new FileRegistry(store), client: agentClient(f.url) };
}

const problem = async (response: Response) => ({ status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as { code: string } });

test('authenticate → decrypt → the adapter gets the result and the exact plaintext (2 MB, new key)', async (t) => {
  const { f, files, client } = await withAgent(t);
  const plain = await randomFile(t, 2 * 1024 * 1024 + 17);
  const envelope = await protectFile(t, plain.path, 'doc-1', 'internal');
  await files.register({ fileId: 'doc-1', type: 'drm', label: 'internal', keyId: KEYS.new.id, registeredAt: new Date().toISOString() });
  const dsid = newSession();

  const auth = await client.authenticate(dsid, { fileId: 'doc-1', userPrincipal: 'alice@corp.example' });
  t.is(auth.status, 200);
  t.deepEqual(await auth.json(), { result: 'allow', fileType: 'drm', fileId: 'doc-1' });

  const accepted = await client.decrypt(dsid, { fileId: 'doc-1', file: envelope });
  t.is(accepted.status, 202);
  const { jobId } = (await accepted.json()) as { jobId: string };
  t.regex(jobId, /^[0-9a-f-]{36}$/);

  const records = await delivered(f.sim.url, jobId);
  const result = records.find((r) => r.kind === 'result');
  t.like(result, { jobId, fileId: 'doc-1', sessionId: dsid, result: 'success', deliveries: 1 });
  t.like(records.find((r) => r.kind === 'decrypted'), { jobId, fileId: 'doc-1', sha256: plain.sha256, size: 2 * 1024 * 1024 + 17, deliveries: 1 });
  t.like(await jobState(client, jobId, 'done'), { jobId, state: 'done', result: 'success', attempts: 2 });
  // The spool keeps nothing of a finished job.
  t.deepEqual((await readdir(f.config.agent?.spoolDir as string)).filter((name) => !name.startsWith('.')), []);
  const audit = f.log.lines.filter((line) => line.component === 'agent-audit');
  t.true(audit.some((line) => line.decision === 'allow' && line.fileId === 'doc-1'));
  t.true(audit.some((line) => line.decision === 'success' && line.jobId === jobId));
  t.false(f.log.text().includes(dsid), 'the session key is never logged');
});

test('an envelope under the old key still decrypts (rotation); an unknown key id is corrupt', async (t) => {
  const { f, client } = await withAgent(t);
  const plain = randomBytes(70_000);
  const old = await protectFile(t, plain, 'doc-old', 'internal', KEYS.old);
  const foreign = await protectFile(t, plain, 'doc-foreign', 'internal', { id: 'k-unknown', hex: randomBytes(32).toString('hex') });
  const dsid = newSession();
  t.is((await client.authenticate(dsid, { fileId: 'doc-old', userPrincipal: 'bob@corp.example' })).status, 200);
  const a = (await (await client.decrypt(dsid, { fileId: 'doc-old', file: old })).json()) as { jobId: string };
  const b = (await (await client.decrypt(dsid, { fileId: 'doc-foreign', file: foreign })).json()) as { jobId: string };
  const first = await delivered(f.sim.url, a.jobId);
  t.like(first.find((r) => r.kind === 'decrypted'), { sha256: sha256(plain), size: plain.length });
  t.like((await delivered(f.sim.url, b.jobId)).find((r) => r.kind === 'result'), { result: 'corrupt' });
});

test('outcomes: denied principal, unknown file, plain registered file, not an envelope, tampered and truncated envelopes', async (t) => {
  const { f, files, client } = await withAgent(t);
  const plain = randomBytes(300_000);
  const secretDoc = await protectFile(t, plain, 'doc-secret', 'secret');
  await files.register({ fileId: 'doc-secret', type: 'drm', label: 'secret', keyId: KEYS.new.id, registeredAt: new Date().toISOString() });
  await files.register({ fileId: 'doc-plain', type: 'plain', registeredAt: new Date().toISOString() });

  // Not entitled: authenticate 403, and a decrypt of the same file by the same session → denied.
  const carol = newSession();
  const denied = await problem(await client.authenticate(carol, { fileId: 'doc-secret', userPrincipal: 'carol@corp.example' }));
  t.like(denied, { status: 403, type: 'application/problem+json', body: { code: 'agent_access_denied' } });
  const deniedJob = (await (await client.decrypt(carol, { fileId: 'doc-secret', file: secretDoc })).json()) as { jobId: string };
  const deniedRecords = await delivered(f.sim.url, deniedJob.jobId);
  t.like(deniedRecords.find((r) => r.kind === 'result'), { result: 'denied' });
  t.false(deniedRecords.some((r) => r.kind === 'decrypted'), 'no plaintext for a denied principal');

  // The entitled principal gets the same file.
  const boss = newSession();
  t.is((await client.authenticate(boss, { fileId: 'doc-secret', userPrincipal: 'boss@CORP.example' })).status, 200);

  // Unknown file id: allow/unknown, then the bytes decide: a plain file is not_drm.
  const dave = newSession();
  t.deepEqual(await (await client.authenticate(dave, { fileId: 'doc-unknown', userPrincipal: 'dave@corp.example' })).json(), { result: 'allow', fileType: 'unknown', fileId: 'doc-unknown' });
  const notDrm = (await (await client.decrypt(dave, { fileId: 'doc-unknown', file: await bytesFile(t, Buffer.from('just a plain text file\n')) })).json()) as { jobId: string };
  t.like((await delivered(f.sim.url, notDrm.jobId)).find((r) => r.kind === 'result'), { result: 'not_drm' });

  // A registered plain file needs no decryption.
  t.like(await problem(await client.authenticate(dave, { fileId: 'doc-plain', userPrincipal: 'dave@corp.example' })), { status: 422, body: { code: 'not_drm_file' } });

  // Flipped byte in the body, truncated, an envelope of another file id: corrupt; nothing decrypted.
  const internal = await protectFile(t, plain, 'doc-internal', 'internal');
  const bytes = await import('node:fs/promises').then((fs) => fs.readFile(internal));
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 100] = (flipped[flipped.length - 100] as number) ^ 1;
  const cases = [
    { name: 'flipped', file: await bytesFile(t, flipped), fileId: 'doc-internal' },
    { name: 'truncated', file: await bytesFile(t, bytes.subarray(0, bytes.length - 5000)), fileId: 'doc-internal' },
    { name: 'other file id', file: internal, fileId: 'doc-renamed' },
  ];
  // A label rewritten in the header (to one dave may open): the header is authenticated, so corrupt, never judged.
  const relabelled = Buffer.from(await import('node:fs/promises').then(async (fs) => fs.readFile(await protectFile(t, plain, 'doc-relabel', 'xxxxxxxx'))));
  const at = relabelled.indexOf('xxxxxxxx');
  t.true(at > 0 && at < 200, 'the label is in the header');
  relabelled.write('internal', at);
  cases.push({ name: 'label rewritten', file: await bytesFile(t, relabelled), fileId: 'doc-relabel' });
  for (const c of cases) {
    const job = (await (await client.decrypt(dave, { fileId: c.fileId, file: c.file })).json()) as { jobId: string };
    const records = await delivered(f.sim.url, job.jobId);
    t.like(records.find((r) => r.kind === 'result'), { result: 'corrupt' }, c.name);
    t.false(records.some((r) => r.kind === 'decrypted'), c.name);
  }
  t.false(f.log.lines.some((line) => (line.level as number) >= 50), 'no error lines');
});

test('the adapter down: callbacks are retried until it comes back, then delivered once', async (t) => {
  const { f, client } = await withAgent(t);
  await f.simConfig({ adapter: { failing: true } });
  const plain = randomBytes(100_000);
  const envelope = await protectFile(t, plain, 'doc-retry', 'internal');
  const dsid = newSession();
  await client.authenticate(dsid, { fileId: 'doc-retry', userPrincipal: 'erin@corp.example' });
  const { jobId } = (await (await client.decrypt(dsid, { fileId: 'doc-retry', file: envelope })).json()) as { jobId: string };
  const retrying = await jobState(client, jobId, 'retrying');
  t.is(retrying.result, 'success');
  t.deepEqual((await received(f.sim.url)).filter((r) => r.jobId === jobId), []);
  // A few failed attempts (backoff 100–400 ms), then the adapter is back.
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  await f.simConfig({ adapter: { failing: false } });
  const records = await delivered(f.sim.url, jobId);
  t.is(records.length, 2);
  t.true(records.every((r) => r.deliveries === 1));
  t.like(records.find((r) => r.kind === 'decrypted'), { sha256: sha256(plain) });
  const done = await jobState(client, jobId, 'done');
  t.true((done.attempts as number) >= 4, `attempts ${String(done.attempts)}`);
});

const badInputs: Array<[string, (f: PassgateFixture, dsid: string, envelope: string) => Promise<Response>, number, string]> = [
  ['no partner secret', (f) => fetch(`${f.url}/agent/v1/drm/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json', 'kep-agentsession': newSession() }, body: '{}' }), 401, 'invalid_partner_credential'],
  ['a wrong partner secret', (f, dsid) => agentClient(f.url).authenticate(dsid, { fileId: 'x', userPrincipal: 'a@corp.example' }, 'wrong-secret-0123456789'), 401, 'invalid_partner_credential'],
  ['no Kep-AgentSession', (f) => agentClient(f.url).authenticate(undefined, { fileId: 'x', userPrincipal: 'a@corp.example' }), 400, 'invalid_agent_session'],
  ['a Kep-AgentSession with a space', (f) => agentClient(f.url).authenticate('has space inside', { fileId: 'x', userPrincipal: 'a@corp.example' }), 400, 'invalid_agent_session'],
  ['a body without userPrincipal', (f, dsid) => agentClient(f.url).authenticate(dsid, { fileId: 'x' }), 400, 'invalid_body'],
  // A right-to-left override would make an audit line read as another user.
  ['a userPrincipal with a control character', (f, dsid) => agentClient(f.url).authenticate(dsid, { fileId: 'x', userPrincipal: 'evil\u202emoc.elpmaxe@a' }), 400, 'invalid_body'],
  ['decrypt with an unknown DSID', (f, _dsid, envelope) => agentClient(f.url).decrypt(newSession(), { fileId: 'doc', file: envelope }), 401, 'unknown_agent_session'],
  ['decrypt with a DSID of another partner', (f, dsid, envelope) => agentClient(f.url).decrypt(dsid, { fileId: 'doc', file: envelope }, OTHER_PARTNER_SECRET), 401, 'unknown_agent_session'],
  ['decrypt without the file part', (f, dsid) => agentClient(f.url).decrypt(dsid, { fileId: 'doc' }), 400, 'invalid_body'],
  ['decrypt without fileId', (f, dsid, envelope) => agentClient(f.url).decrypt(dsid, { file: envelope }), 400, 'invalid_body'],
  [
    'decrypt as JSON',
    (f, dsid) => fetch(`${f.url}/agent/v1/drm/decrypt`, { method: 'POST', headers: { authorization: `Bearer ${(agentFile().partners as { demo: { secret: string } }).demo.secret}`, 'kep-agentsession': dsid, 'content-type': 'application/json' }, body: '{"fileId":"x"}' }),
    415,
    'unsupported_media_type',
  ],
  [
    'decrypt as multipart without a boundary',
    (f, dsid) => fetch(`${f.url}/agent/v1/drm/decrypt`, { method: 'POST', headers: { authorization: `Bearer ${(agentFile().partners as { demo: { secret: string } }).demo.secret}`, 'kep-agentsession': dsid, 'content-type': 'multipart/form-data' }, body: 'x' }),
    400,
    'invalid_body',
  ],
  [
    'decrypt with a broken multipart body',
    (f, dsid) =>
      fetch(`${f.url}/agent/v1/drm/decrypt`, {
        method: 'POST',
        headers: { authorization: `Bearer ${(agentFile().partners as { demo: { secret: string } }).demo.secret}`, 'kep-agentsession': dsid, 'content-type': 'multipart/form-data; boundary=XYZ' },
        body: '--XYZ\r\nContent-Disposition: form-data; name="fileId"\r\n\r\ndoc\r\n--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\npartial',
      }),
    400,
    'invalid_body',
  ],
  ['a job id of nobody', (f) => agentClient(f.url).job(randomUUID()), 404, 'not_found'],
  ['a job id that is not one', (f) => agentClient(f.url).job('..%2F..%2Fetc'), 404, 'not_found'],
];

test('bad input: clear problem answers, never a 5xx, and nothing is queued', async (t) => {
  const { f, client } = await withAgent(t, agentFile({ max_upload_bytes: 200_000 }));
  const envelope = await protectFile(t, randomBytes(1000), 'doc', 'internal');
  const dsid = newSession();
  t.is((await client.authenticate(dsid, { fileId: 'doc', userPrincipal: 'a@corp.example' })).status, 200);
  for (const [name, send, status, code] of badInputs) {
    const answer = await problem(await send(f, dsid, envelope));
    t.like(answer, { status, type: 'application/problem+json', body: { code } }, name);
  }
  // Over the upload limit by one byte: 413 at once (no hang), and the spool keeps nothing; exactly the limit is taken.
  t.like(await problem(await client.decrypt(dsid, { fileId: 'doc', file: await bytesFile(t, randomBytes(200_001)) })), { status: 413, body: { code: 'payload_too_large' } });
  t.like(await problem(await client.decrypt(dsid, { fileId: 'doc', file: await protectFile(t, randomBytes(300_000), 'doc', 'internal') })), { status: 413, body: { code: 'payload_too_large' } });
  const atLimit = await client.decrypt(dsid, { fileId: 'doc', file: await bytesFile(t, randomBytes(200_000)) });
  t.is(atLimit.status, 202);
  await delivered(f.sim.url, ((await atLimit.json()) as { jobId: string }).jobId);
  // Another partner cannot read a job; its id is not case-sensitive.
  const { jobId } = (await (await client.decrypt(dsid, { fileId: 'doc', file: envelope })).json()) as { jobId: string };
  await delivered(f.sim.url, jobId);
  t.like(await problem(await client.job(jobId, OTHER_PARTNER_SECRET)), { status: 404 });
  t.like(await (await client.job(jobId.toUpperCase())).json(), { jobId, state: 'done' });
  t.deepEqual((await readdir(f.config.agent?.spoolDir as string)).filter((name) => !name.startsWith('.')), []);
  t.false(f.log.lines.some((line) => (line.level as number) >= 50), 'no error lines');
});

test('an upload cut half-way leaves nothing behind and no job', async (t) => {
  const { f, client } = await withAgent(t);
  const dsid = newSession();
  await client.authenticate(dsid, { fileId: 'doc', userPrincipal: 'a@corp.example' });
  const url = new URL('/agent/v1/drm/decrypt', f.url);
  await new Promise<void>((resolve) => {
    const req = request(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${(agentFile().partners as { demo: { secret: string } }).demo.secret}`,
        'kep-agentsession': dsid,
        'content-type': 'multipart/form-data; boundary=B',
        'content-length': '10000000',
      },
    });
    req.on('error', () => resolve());
    req.write('--B\r\nContent-Disposition: form-data; name="fileId"\r\n\r\ndoc\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n');
    req.write(randomBytes(500_000), () => setTimeout(() => req.destroy(), 200));
    req.on('close', () => resolve());
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual((await readdir(f.config.agent?.spoolDir as string)).filter((name) => !name.startsWith('.')), []);
  t.deepEqual(await received(f.sim.url), []);
  t.false(f.log.lines.some((line) => (line.level as number) >= 50), 'no error lines');
});
