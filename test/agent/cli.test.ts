import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parse, stringify } from 'yaml';
import { protect } from '../../src/agent/envelope.js';
import { FileRegistry } from '../../src/agent/files.js';
import { envelopeKey } from '../../src/config/agent.js';
import { loadConfig } from '../../src/config/load.js';
import { bundledConfigFile, packageRoot } from '../../src/config/package.js';
import { createLogger } from '../../src/infra/logger.js';
import { createStore } from '../../src/infra/store.js';
import { tempDir } from '../helpers/with-app.js';

// Serial: each case starts Node + tsx (~1.5 s of CPU); run together they starve each other.

/** The environment without any passgate setting of the machine running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)),
  );
  return { ...env, ...extra };
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function passgate(t: ExecutionContext, args: string[], env: Record<string, string>): Promise<Finished> {
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', ...args], { cwd: packageRoot, env: cleanEnv(env) });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** A data dir (the embedded store) and a scratch dir for the files of one test. */
async function workspace(t: ExecutionContext) {
  const dir = await tempDir(t);
  const env = { PASSGATE_DATA_DIR: join(dir, 'data') };
  return { dir, env, path: (name: string) => join(dir, name) };
}

/** config/example.yaml changed by `edit`, written into `dir`. */
async function configFile(dir: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
  const config = parse(await readFile(bundledConfigFile, 'utf8')) as Record<string, unknown>;
  edit(config);
  const file = join(dir, `config-${randomBytes(4).toString('hex')}.yaml`);
  await writeFile(file, stringify(config));
  return file;
}

/** The demo key of config/example.yaml, as the CLI resolves it. */
function demoKey(dataDir: string): { id: string; key: Buffer } {
  const agent = loadConfig({ PASSGATE_DATA_DIR: dataDir }).agent;
  const first = agent?.keys[0];
  if (!first) throw new Error('config/example.yaml has no agent key');
  return { id: first.id, key: envelopeKey(first.secret) };
}

/** An envelope of `plaintext` written with the demo key (in-process), in 64-byte chunks. */
async function envelopeFile(path: string, plaintext: Buffer, dataDir: string): Promise<void> {
  const { id, key } = demoKey(dataDir);
  await protect(Readable.from([plaintext]), createWriteStream(path), { keyId: id, key, fileId: 'made-in-test', label: 'internal', chunkSize: 64 });
}

function usageError(t: ExecutionContext, run: Finished, message: RegExp, note: string): void {
  t.is(run.code, 2, `${note}: ${run.stderr}`);
  t.regex(run.stderr, message, note);
  t.regex(run.stderr, /Usage:/, note);
  t.is(run.stdout, '', note);
}

/** A failure: exit 1, one clear line on stderr, no stack trace, nothing on stdout. */
function failed(t: ExecutionContext, run: Finished, message: RegExp, note: string): void {
  t.is(run.code, 1, `${note}: ${run.stderr}`);
  t.regex(run.stderr, message, note);
  t.false(run.stderr.includes('    at '), `${note}: no stack trace`);
  t.is(run.stdout, '', note);
}

test.serial('protect → unprotect of a 5 MB file is byte-identical, each printing one JSON line', async (t) => {
  const w = await workspace(t);
  const plaintext = randomBytes(5 * 1024 * 1024);
  await writeFile(w.path('report.bin'), plaintext);
  const sealed = await passgate(t, ['protect', '--in', w.path('report.bin'), '--out', w.path('report.pgdrm'), '--file-id', 'reports/q1.bin', '--label', 'internal'], w.env);
  t.is(sealed.code, 0, sealed.stderr);
  const envelopeBytes = (await stat(w.path('report.pgdrm'))).size;
  t.deepEqual(JSON.parse(sealed.stdout), { fileId: 'reports/q1.bin', label: 'internal', keyId: 'demo-2026', plaintextBytes: plaintext.length, envelopeBytes, registered: false });
  t.is(sealed.stdout.trim().split('\n').length, 1);

  const opened = await passgate(t, ['unprotect', '--in', w.path('report.pgdrm'), '--out', w.path('report.out')], w.env);
  t.is(opened.code, 0, opened.stderr);
  t.deepEqual(JSON.parse(opened.stdout), { version: 1, keyId: 'demo-2026', fileId: 'reports/q1.bin', label: 'internal', chunkSize: 65536, plaintextBytes: plaintext.length });
  t.true((await readFile(w.path('report.out'))).equals(plaintext));
  t.deepEqual((await readdir(w.dir)).sort(), ['report.bin', 'report.out', 'report.pgdrm'], 'no temporary file left, no store opened');
});

test.serial('protect --register records the file where a store on the same data dir (open meanwhile) sees it', async (t) => {
  const w = await workspace(t);
  // Open first, as `serve` would be: the CLI writes while this process holds the embedded file open.
  const store = await createStore({ dataDir: w.env.PASSGATE_DATA_DIR, logger: createLogger({ level: 'silent' }) });
  t.teardown(() => store.disconnect());
  const registry = new FileRegistry(store);
  await writeFile(w.path('plan.txt'), 'the plan\n');
  const fileId = '기획/plan v2.txt';
  const sealed = await passgate(t, ['protect', '--in', w.path('plan.txt'), '--out', w.path('plan.pgdrm'), '--file-id', fileId, '--label', 'internal', '--register'], w.env);
  t.is(sealed.code, 0, sealed.stderr);
  t.true((JSON.parse(sealed.stdout) as { registered: boolean }).registered);
  const record = await registry.get(fileId);
  t.like(record, { fileId, type: 'drm', label: 'internal', keyId: 'demo-2026' });
  t.true(Math.abs(Date.parse(record?.registeredAt ?? '') - Date.now()) < 60_000);

  const shown = await passgate(t, ['files', 'show', '--file-id', fileId], w.env);
  t.is(shown.code, 0, shown.stderr);
  t.deepEqual(JSON.parse(shown.stdout), record);
});

test.serial('files register (plain, drm with the first or a chosen key), show and remove', async (t) => {
  const w = await workspace(t);
  const config = await configFile(w.dir, (c) => {
    (c.agent as { keys: unknown[] }).keys.push({ id: 'old-2025', secret: randomBytes(32).toString('hex') });
  });
  const env = { ...w.env, PASSGATE_CONFIG: config };
  const plain = await passgate(t, ['files', 'register', '--file-id', 'menu.txt', '--type', 'plain'], env);
  t.is(plain.code, 0, plain.stderr);
  t.like(JSON.parse(plain.stdout), { fileId: 'menu.txt', type: 'plain' });
  const drm = await passgate(t, ['files', 'register', '--file-id', 'a.pgdrm', '--type', 'drm', '--label', 'internal'], env);
  t.like(JSON.parse(drm.stdout), { fileId: 'a.pgdrm', type: 'drm', label: 'internal', keyId: 'demo-2026' });
  const older = await passgate(t, ['files', 'register', '--file-id', 'b.pgdrm', '--type', 'drm', '--label', 'internal', '--key-id', 'old-2025'], env);
  t.like(JSON.parse(older.stdout), { keyId: 'old-2025' });
  t.like(JSON.parse((await passgate(t, ['files', 'show', '--file-id', 'menu.txt'], env)).stdout), { type: 'plain' });

  const removed = await passgate(t, ['files', 'remove', '--file-id', 'menu.txt'], env);
  t.is(removed.code, 0, removed.stderr);
  t.deepEqual(JSON.parse(removed.stdout), { fileId: 'menu.txt', removed: true });
  failed(t, await passgate(t, ['files', 'show', '--file-id', 'menu.txt'], env), /no file registered with id "menu.txt"/, 'show after remove');
  failed(t, await passgate(t, ['files', 'remove', '--file-id', 'menu.txt'], env), /no file registered with id "menu.txt"/, 'remove twice');
});

test.serial('rotation: protect --key-id uses an older configured key, unprotect finds it by the header', async (t) => {
  const w = await workspace(t);
  const config = await configFile(w.dir, (c) => {
    (c.agent as { keys: unknown[] }).keys.unshift({ id: 'new-2027', secret: randomBytes(32).toString('hex') });
  });
  const env = { ...w.env, PASSGATE_CONFIG: config };
  await writeFile(w.path('a.txt'), 'rotated\n');
  const sealed = await passgate(t, ['protect', '--in', w.path('a.txt'), '--out', w.path('a.pgdrm'), '--file-id', 'a', '--label', 'internal', '--key-id', 'demo-2026'], env);
  t.like(JSON.parse(sealed.stdout), { keyId: 'demo-2026' });
  const opened = await passgate(t, ['unprotect', '--in', w.path('a.pgdrm'), '--out', w.path('a.out')], env);
  t.like(JSON.parse(opened.stdout), { keyId: 'demo-2026' });
  t.is(await readFile(w.path('a.out'), 'utf8'), 'rotated\n');
});

test.serial('missing, unknown or invalid flags print the usage on stderr and exit 2', async (t) => {
  const w = await workspace(t);
  await writeFile(w.path('in.txt'), 'x');
  const io = ['--in', w.path('in.txt'), '--out', w.path('out.pgdrm')];
  const cases: Array<[string[], RegExp]> = [
    [['protect'], /protect needs --in/],
    [['protect', ...io, '--file-id', 'f'], /protect needs --label/],
    [['protect', ...io, '--label', 'internal'], /protect needs --file-id/],
    [['protect', ...io, '--file-id', 'f', '--label', 'internal', '--bogus'], /--bogus/],
    [['protect', ...io, '--file-id', 'f', '--label', 'has space'], /--label: expected a label/],
    [['protect', ...io, '--file-id', 'tab\there', '--label', 'internal'], /--file-id: expected no control characters/],
    [['protect', ...io, '--file-id', 'x'.repeat(1025), '--label', 'internal'], /--file-id: expected 1 to 1024 bytes/],
    [['protect', ...io, '--file-id', 'f', '--label', 'internal', '--key-id', 'nope'], /--key-id "nope" is not a configured key \(agent\.keys: demo-2026\)/],
    [['unprotect', '--in', w.path('in.txt')], /unprotect needs --out/],
    [['unprotect', '--in', w.path('in.txt'), '--out', w.path('o'), 'extra'], /extra/],
    [['files'], /usage: passgate files register/],
    [['files', 'list'], /usage: passgate files register/],
    [['files', 'show'], /files show needs --file-id/],
    [['files', 'register', '--file-id', 'f'], /needs --type plain or --type drm/],
    [['files', 'register', '--file-id', 'f', '--type', 'drm'], /files register --type drm needs --label/],
    [['files', 'register', '--file-id', 'f', '--type', 'plain', '--label', 'internal'], /--type plain takes no --label/],
  ];
  for (const [args, message] of cases) usageError(t, await passgate(t, args, w.env), message, args.join(' ').slice(0, 80));
  t.deepEqual((await readdir(w.dir)).sort(), ['in.txt'], 'nothing written, not even the store');
});

test.serial('without an agent section in the configuration: a clear message and exit 2', async (t) => {
  const w = await workspace(t);
  const config = await configFile(w.dir, (c) => delete c.agent);
  await writeFile(w.path('in.txt'), 'x');
  const env = { ...w.env, PASSGATE_CONFIG: config };
  for (const args of [
    ['protect', '--in', w.path('in.txt'), '--out', w.path('o'), '--file-id', 'f', '--label', 'internal'],
    ['unprotect', '--in', w.path('in.txt'), '--out', w.path('o')],
    ['files', 'show', '--file-id', 'f'],
  ]) {
    const run = await passgate(t, args, env);
    t.is(run.code, 2, args[0]);
    t.regex(run.stderr, /agent: this configuration has no agent section/);
    t.false(run.stderr.includes('    at '));
  }
});

test.serial('an existing --out is refused (exit 1, untouched) unless --force', async (t) => {
  const w = await workspace(t);
  await writeFile(w.path('in.txt'), 'new content');
  await writeFile(w.path('taken'), 'keep me');
  const protectArgs = ['protect', '--in', w.path('in.txt'), '--out', w.path('taken'), '--file-id', 'f', '--label', 'internal'];
  failed(t, await passgate(t, protectArgs, w.env), /--out .*taken exists; pass --force to replace it/, 'protect');
  t.is(await readFile(w.path('taken'), 'utf8'), 'keep me');
  await envelopeFile(w.path('e.pgdrm'), Buffer.from('secret'), w.env.PASSGATE_DATA_DIR);
  failed(t, await passgate(t, ['unprotect', '--in', w.path('e.pgdrm'), '--out', w.path('taken')], w.env), /exists; pass --force/, 'unprotect');
  t.is(await readFile(w.path('taken'), 'utf8'), 'keep me');

  const forced = await passgate(t, ['unprotect', '--in', w.path('e.pgdrm'), '--out', w.path('taken'), '--force'], w.env);
  t.is(forced.code, 0, forced.stderr);
  t.is(await readFile(w.path('taken'), 'utf8'), 'secret');
  t.deepEqual((await readdir(w.dir)).sort(), ['e.pgdrm', 'in.txt', 'taken']);
});

test.serial('unprotect failures exit 1 with the reason, no stack trace, and leave no output or temporary file', async (t) => {
  const w = await workspace(t);
  const dataDir = w.env.PASSGATE_DATA_DIR;
  await writeFile(w.path('plain.txt'), 'just a text file\n'.repeat(100));
  // Four chunks of 64: the damage is in the last, after three chunks that would have been written.
  await envelopeFile(w.path('ok.pgdrm'), randomBytes(256), dataDir);
  const damaged = await readFile(w.path('ok.pgdrm'));
  damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 1;
  await writeFile(w.path('damaged.pgdrm'), damaged);
  const otherKey = await configFile(w.dir, (c) => {
    (c.agent as { keys: unknown[] }).keys = [{ id: 'other', secret: randomBytes(32).toString('hex') }];
  });
  const before = (await readdir(w.dir)).sort();

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['plain.txt', w.env, /plain\.txt: not a passgate envelope .*\(not_envelope\); nothing written/],
    ['damaged.pgdrm', w.env, /chunk 3 failed authentication .*\(corrupt\); nothing written/],
    ['ok.pgdrm', { ...w.env, PASSGATE_CONFIG: otherKey }, /envelope key "demo-2026" is not configured \(unknown_key\)/],
    ['missing.pgdrm', w.env, /cannot read --in .*missing\.pgdrm: ENOENT/],
  ];
  for (const [input, env, message] of cases) {
    failed(t, await passgate(t, ['unprotect', '--in', w.path(input), '--out', w.path('out.bin')], env), message, input);
    t.deepEqual((await readdir(w.dir)).sort(), before, `${input}: no out.bin, no out.bin.tmp-*`);
  }
  failed(t, await passgate(t, ['protect', '--in', w.path('missing'), '--out', w.path('x.pgdrm'), '--file-id', 'f', '--label', 'internal'], w.env), /cannot read --in/, 'protect');
  t.deepEqual((await readdir(w.dir)).sort(), before);
});

test.serial('SIGTERM while writing removes the temporary file and leaves no --out', async (t) => {
  const w = await workspace(t);
  const fifo = w.path('input.fifo');
  await new Promise<void>((resolve, reject) => execFile('mkfifo', [fifo], (error) => (error ? reject(error) : resolve())));
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'protect', '--in', fifo, '--out', w.path('out.pgdrm'), '--file-id', 'f', '--label', 'internal'], {
    cwd: packageRoot,
    env: cleanEnv(w.env),
  });
  t.teardown(() => void child.kill('SIGKILL'));
  const exited = once(child, 'exit');
  // The writer keeps the pipe open after some bytes: the CLI waits for the rest with its temporary file open.
  const writer = await open(fifo, 'w');
  t.teardown(() => writer.close());
  await writer.write(randomBytes(200_000));
  const tmp = async () => (await readdir(w.dir)).filter((name) => name.startsWith('out.pgdrm.tmp-'));
  for (let i = 0; i < 200 && (await tmp()).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.is((await tmp()).length, 1, 'the temporary file exists while writing');
  child.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  t.is(signal, 'SIGTERM', `exit ${code}`);
  t.deepEqual((await readdir(w.dir)).sort(), ['input.fifo']);
});

test.serial('--help lists protect, unprotect and files', async (t) => {
  const help = await passgate(t, ['protect', '--help'], {});
  t.is(help.code, 0);
  for (const command of ['protect --in', 'unprotect --in', 'files register', 'files show', 'files remove']) t.true(help.stdout.includes(`passgate ${command}`), command);
});
