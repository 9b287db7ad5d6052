import test, { type ExecutionContext } from 'ava';
import { FileRegistry, type RegisteredFile } from '../../src/agent/files.js';
import { createLogger } from '../../src/infra/logger.js';
import { createStore, type Store } from '../../src/infra/store.js';
import { tempDir } from '../helpers/with-app.js';
import { freshPrefix, withRedis } from '../helpers/with-redis.js';

const redisUrl = withRedis(test);
const logger = createLogger({ level: 'silent' });

type Backend = 'embedded' | 'redis';
const backends: Backend[] = ['embedded', 'redis'];

/** A real store of each kind; a second call with the same `where` opens the same data. */
async function openStore(t: ExecutionContext, backend: Backend, where?: string): Promise<{ store: Store; where: string }> {
  const place = where ?? (backend === 'embedded' ? await tempDir(t) : freshPrefix());
  const store =
    backend === 'embedded'
      ? await createStore({ dataDir: place, logger })
      : await createStore({ redisUrl: redisUrl(), dataDir: await tempDir(t), keyPrefix: place, logger });
  t.teardown(() => store.disconnect());
  return { store, where: place };
}

const drmFile: RegisteredFile = { fileId: 'shared/roadmap.pptx', type: 'drm', label: 'internal', keyId: 'demo-2026', registeredAt: '2026-01-15T09:30:00.000Z' };
const plainFile: RegisteredFile = { fileId: 'shared/menu.txt', type: 'plain', registeredAt: '2026-01-15T09:31:00.000Z' };

for (const backend of backends) {
  test(`${backend}: register, get and remove both kinds of record`, async (t) => {
    const registry = new FileRegistry((await openStore(t, backend)).store);
    t.is(await registry.get(drmFile.fileId), undefined);
    await registry.register(drmFile);
    await registry.register(plainFile);
    t.deepEqual(await registry.get(drmFile.fileId), drmFile);
    t.deepEqual(await registry.get(plainFile.fileId), plainFile);
    t.true(await registry.remove(drmFile.fileId));
    t.false(await registry.remove(drmFile.fileId));
    t.is(await registry.get(drmFile.fileId), undefined);
    t.deepEqual(await registry.get(plainFile.fileId), plainFile);
  });

  test(`${backend}: registering an id again replaces its record`, async (t) => {
    const registry = new FileRegistry((await openStore(t, backend)).store);
    await registry.register(drmFile);
    const plain: RegisteredFile = { fileId: drmFile.fileId, type: 'plain', registeredAt: '2026-02-01T00:00:00Z' };
    await registry.register(plain);
    t.deepEqual(await registry.get(drmFile.fileId), plain);
  });

  test(`${backend}: records have no TTL and survive reopening the store`, async (t) => {
    const first = await openStore(t, backend);
    await new FileRegistry(first.store).register(drmFile);
    const raw = await first.store.namespace<RegisteredFile>('agent-files').getRaw(drmFile.fileId);
    t.deepEqual(raw?.value, drmFile);
    t.is(raw?.expires, undefined);
    await first.store.disconnect();
    const second = await openStore(t, backend, first.where);
    t.deepEqual(await new FileRegistry(second.store).get(drmFile.fileId), drmFile);
  });

  test(`${backend}: file ids are any 1–1024 bytes of UTF-8 without control characters`, async (t) => {
    const registry = new FileRegistry((await openStore(t, backend)).store);
    const good = ['x', 'a:b:c', '폴더/보고서 (최종).hwp', 'é'.repeat(512), `${'x'.repeat(1023)}/`, '%2e%2e/*?[]'];
    for (const fileId of good) {
      await registry.register({ fileId, type: 'plain', registeredAt: '2026-01-01T00:00:00Z' });
      t.is((await registry.get(fileId))?.fileId, fileId);
    }
    const bad = ['', 'x'.repeat(1025), 'é'.repeat(513), 'tab\there', 'nul\0', 'del\x7f', 'c1\u0085', 'lone\ud800'];
    for (const fileId of bad) {
      await t.throwsAsync(registry.register({ fileId, type: 'plain', registeredAt: '2026-01-01T00:00:00Z' }), { instanceOf: RangeError, message: /fileId/ }, JSON.stringify(fileId));
      t.is(await registry.get(fileId), undefined);
      t.false(await registry.remove(fileId));
    }
  });
}

test('register refuses records that do not fit the schema', async (t) => {
  const registry = new FileRegistry((await openStore(t, 'embedded')).store);
  const bad = [
    { ...drmFile, label: 'has space' },
    { ...drmFile, label: '' },
    { ...drmFile, keyId: '' },
    { ...drmFile, registeredAt: 'yesterday' },
    { ...plainFile, label: 'internal' },
    { ...plainFile, type: 'other' },
    { fileId: 'x', type: 'drm', registeredAt: '2026-01-01T00:00:00Z' },
  ];
  for (const file of bad) await t.throwsAsync(registry.register(file as RegisteredFile), { instanceOf: RangeError }, JSON.stringify(file));
});

test('a record the registry cannot read is an error, not an unknown file', async (t) => {
  const { store } = await openStore(t, 'embedded');
  await store.namespace<unknown>('agent-files').set('weird', { type: 'drm' });
  await t.throwsAsync(new FileRegistry(store).get('weird'), { message: /not a RegisteredFile/ });
});

test('two stores on one Redis (two replicas, or the CLI and serve) see the same registrations', async (t) => {
  const a = await openStore(t, 'redis');
  const b = await openStore(t, 'redis', a.where);
  await new FileRegistry(a.store).register(drmFile);
  t.deepEqual(await new FileRegistry(b.store).get(drmFile.fileId), drmFile);
  t.true(await new FileRegistry(b.store).remove(drmFile.fileId));
  t.is(await new FileRegistry(a.store).get(drmFile.fileId), undefined);
});
