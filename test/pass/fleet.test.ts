import test from 'ava';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { withRedis, freshPrefix } from '../helpers/with-redis.js';
import { withSim, freshIp, type SimFixture } from '../helpers/with-sim.js';
import {
  APP_ID,
  byOperation,
  deviceAddress,
  newDeviceId,
  openStore,
  registeredInfo,
  simLog,
  withPass,
} from '../helpers/pass-fixture.js';
import type { ExecutionContext } from 'ava';

const redisUrl = withRedis(test);

interface Child {
  /** Lets the child start its work (it waits for this after `ready`). */
  go(): void;
  /** Its one result line. */
  result: Promise<{ clientId?: string; mvpds?: number; error?: string }>;
}

/** Starts test/helpers/pass-child.ts and resolves once it printed `ready`. */
async function startChild(
  t: ExecutionContext,
  f: SimFixture,
  args: { dataDir: string; deviceId: string; ip: string; keyringText: string; redisUrl?: string; keyPrefix?: string },
): Promise<Child> {
  const argv = ['--import=tsx', 'test/helpers/pass-child.ts', f.url, args.dataDir, args.deviceId, args.ip, String(f.clock.now())];
  if (args.redisUrl) argv.push('--redis-url', args.redisUrl);
  if (args.keyPrefix) argv.push('--key-prefix', args.keyPrefix);
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, PASS_CHILD_KEYRING: args.keyringText },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const output: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  lines.on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else output.push(line);
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`child exited (${code}) early: ${stderr}`))));
  exited.catch(() => undefined);
  const nextLine = () => Promise.race([new Promise<string>((resolve) => (output.length > 0 ? resolve(output.shift() as string) : waiters.push(resolve))), exited]);
  const ready = await nextLine();
  if (ready !== 'ready') throw new Error(`child said ${ready}: ${stderr}`);
  return {
    go: () => child.stdin.write('go\n'),
    result: nextLine().then((line) => JSON.parse(line) as { clientId?: string; mvpds?: number; error?: string }),
  };
}

test('two replicas on one Redis register the same new device concurrently: one dcr.register, one dcr.token', async (t) => {
  const f = await withSim(t);
  const keyPrefix = freshPrefix();
  const a = await withPass(t, f, { redisUrl: redisUrl(), keyPrefix });
  // The second replica: its own store connection, its own in-process coalescing, the same keyring.
  const b = await withPass(t, f, { redisUrl: redisUrl(), keyPrefix, keyringText: a.keyringText });
  const deviceId = newDeviceId();
  const client = deviceAddress();
  const register = (replica: typeof a) => replica.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client });

  const records = await Promise.all(Array.from({ length: 20 }, (_, i) => register(i % 2 === 0 ? a : b)));

  const log = await simLog(f);
  t.is(byOperation(log, 'dcr.register').length, 1);
  t.is(byOperation(log, 'dcr.token').length, 1);
  t.is(new Set(records.map((r) => r.clientId)).size, 1);
});

test('a second process on the same SQLite directory serves a known device without registering it again', async (t) => {
  const f = await withSim(t);
  const { dataDir } = await openStore(t);
  const parent = await withPass(t, f, { dataDir });
  const deviceId = newDeviceId();
  const ip = freshIp();
  const record = await parent.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client: { ip, port: 50_000 } });

  const child = await startChild(t, f, { dataDir, deviceId, ip, keyringText: parent.keyringText });
  child.go();
  const result = await child.result;

  t.is(result.error, undefined);
  t.is(result.clientId, record.clientId);
  t.true((result.mvpds ?? 0) > 0);
  const log = await simLog(f);
  t.is(byOperation(log, 'dcr.register').length, 1);
  // The child reused the stored token too (the checklist: never a new token per process or call).
  t.is(byOperation(log, 'dcr.token').length, 1);
  t.is(byOperation(log, 'configuration').length, 1);
});

test('a second process on the same Redis races this one on a new device: one dcr.register in total', async (t) => {
  const f = await withSim(t);
  const keyPrefix = freshPrefix();
  const parent = await withPass(t, f, { redisUrl: redisUrl(), keyPrefix });
  const deviceId = newDeviceId();
  const ip = freshIp();
  const child = await startChild(t, f, { dataDir: parent.dataDir, deviceId, ip, keyringText: parent.keyringText, redisUrl: redisUrl(), keyPrefix });

  child.go();
  const mine = await Promise.all(
    Array.from({ length: 5 }, () => parent.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client: { ip, port: 50_001 } })),
  );
  const theirs = await child.result;

  t.is(theirs.error, undefined);
  t.is(theirs.clientId, mine[0]?.clientId);
  const log = await simLog(f);
  t.is(byOperation(log, 'dcr.register').length, 1);
  t.is(byOperation(log, 'dcr.token').length, 1);
});

test('the throttle mirror is fleet-wide: two replicas on one Redis let 10 of 30 calls for one device IP through', async (t) => {
  const f = await withSim(t);
  const keyPrefix = freshPrefix();
  const frozen = async () => undefined; // the clock does not move while they wait
  const a = await withPass(t, f, { redisUrl: redisUrl(), keyPrefix, sleep: frozen });
  const b = await withPass(t, f, { redisUrl: redisUrl(), keyPrefix, keyringText: a.keyringText, sleep: frozen });
  const device = await a.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: { ip: freshIp() } });
  const client = { ip: freshIp(), port: 40_100 };

  let ok = 0;
  for (let i = 0; i < 30; i++) {
    const replica = i % 2 === 0 ? a : b;
    await replica.services.pass.configuration({ device, client }).then(
      () => ok++,
      () => undefined,
    );
  }

  const fromIp = (await simLog(f)).filter((e) => e.headers['x-forwarded-for'] === client.ip);
  t.is(ok, 10);
  t.is(fromIp.length, 10);
  t.is(fromIp.filter((e) => e.status === 429).length, 0);
});

