/** PASSGATE_DATA_DIR is owner only: the directory 0700, every file passgate writes there 0600. */
import test from 'ava';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyringText } from '../../src/infra/keyring.js';
import { tempDir, withApp } from '../helpers/with-app.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;
const octal = (mode: number) => `0${mode.toString(8)}`;

/** Every entry of the data dir with its mode, e.g. { 'passgate.sqlite': '0600', … }. */
const modes = (dir: string) => Object.fromEntries(readdirSync(dir).map((name) => [name, octal(modeOf(join(dir, name)))]));
/** What an entry must be: directories (the partner agent's spool) 0700, files 0600. */
const privateMode = (dir: string, name: string) => (statSync(join(dir, name)).isDirectory() ? '0700' : '0600');

test('a fresh data dir is 0700 and the store, its WAL/SHM files and the generated keyring are 0600', async (t) => {
  // A usual umask, so SQLite alone would create 0644 files.
  const previous = process.umask(0o022);
  t.teardown(() => process.umask(previous));
  const dataDir = join(await tempDir(t), 'data');
  // Starting opens the store (WAL mode: -wal and -shm beside it) and generates the keyring.
  await withApp(t, { env: { PASSGATE_DATA_DIR: dataDir } });
  t.is(octal(modeOf(dataDir)), '0700');
  const files = modes(dataDir);
  t.log(files);
  t.truthy(files['passgate.sqlite']);
  t.truthy(files.keyring);
  t.truthy(files['passgate.sqlite-wal'], 'WAL mode keeps a -wal file beside the database');
  for (const [name, mode] of Object.entries(files)) t.is(mode, privateMode(dataDir, name), name);
});

test('files and a directory left looser by an older version are tightened at start, and that is logged', async (t) => {
  const previous = process.umask(0o022);
  t.teardown(() => process.umask(previous));
  const dataDir = join(await tempDir(t), 'data');
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  // An empty file is an empty SQLite database; the keyring as an older version wrote it.
  for (const [name, text] of [['passgate.sqlite', ''], ['passgate.sqlite-wal', ''], ['keyring', `${generateKeyringText()}\n`]] as const) {
    writeFileSync(join(dataDir, name), text, { mode: 0o644 });
    chmodSync(join(dataDir, name), 0o644);
  }
  const app = await withApp(t, { env: { PASSGATE_DATA_DIR: dataDir } });
  t.is(octal(modeOf(dataDir)), '0700');
  const files = modes(dataDir);
  t.log(files);
  for (const [name, mode] of Object.entries(files)) t.is(mode, privateMode(dataDir, name), name);
  const warning = app.log.lines.find((l) => l.msg === 'store: data files were readable by others; now owner only');
  t.deepEqual(warning?.tightened, [dataDir, join(dataDir, 'passgate.sqlite'), join(dataDir, 'passgate.sqlite-wal')]);
});
