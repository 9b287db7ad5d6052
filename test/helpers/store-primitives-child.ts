/**
 * A separate process racing other processes on the store's native primitives (concurrency tests):
 *   node --import=tsx test/helpers/store-primitives-child.ts acquire <dataDir> <name> <ttlMs> <now> <count> [--redis-url U] [--key-prefix P]
 *   node --import=tsx test/helpers/store-primitives-child.ts take    <dataDir> <key> <rate> <burst> <now> <count> [--redis-url U] [--key-prefix P]
 *   node --import=tsx test/helpers/store-primitives-child.ts claim   <dataDir> <queue> <leaseMs> <now> <count> [--redis-url U] [--key-prefix P]
 * (`--redis-topology <JSON RedisTopology>` instead of --redis-url: a Redis Cluster or Sentinel set.)
 * It opens the store, prints `ready`, waits for a line on stdin (so every racer starts together),
 * fires `count` concurrent calls, prints their results as one JSON array (acquire: token or null;
 * take: allowed; claim: the claimed job's id or null) and exits after disconnect(). Logs go to stderr.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createLogger } from '../../src/infra/logger.js';
import { createStore, type RedisTopology } from '../../src/infra/store.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'redis-url': { type: 'string' }, 'redis-topology': { type: 'string' }, 'key-prefix': { type: 'string' } },
});
const [command, dataDir, name, ...numbers] = positionals;
const [a, b, c, d] = numbers.map(Number);
const valid =
  dataDir &&
  name &&
  (((command === 'acquire' || command === 'claim') && numbers.length === 3) || (command === 'take' && numbers.length === 4)) &&
  [a, b, c, d].slice(0, numbers.length).every((n) => Number.isFinite(n));
if (!valid) {
  console.error(
    'usage: store-primitives-child.ts acquire <dataDir> <name> <ttlMs> <now> <count> | ' +
      'take <dataDir> <key> <rate> <burst> <now> <count> | claim <dataDir> <queue> <leaseMs> <now> <count> [--redis-url U] [--key-prefix P]',
  );
  process.exit(2);
}

const store = await createStore({
  dataDir,
  redisUrl: values['redis-url'],
  ...(values['redis-topology'] ? { redis: JSON.parse(values['redis-topology']) as RedisTopology } : {}),
  keyPrefix: values['key-prefix'],
  connectTimeoutMs: 20_000,
  logger: createLogger({ level: 'warn', destination: pino.destination({ fd: 2, sync: true }) }),
});
try {
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve, reject) => {
    lines.once('line', () => resolve());
    lines.once('close', () => reject(new Error('stdin closed before the go line'))); // the parent went away
  });
  lines.close();
  const fire: () => Promise<unknown> =
    command === 'acquire'
      ? () => store.leases.acquire(name, a as number, b as number).then((token) => token ?? null)
      : command === 'claim'
        ? () => store.jobs.claim(name, a as number, b as number).then((job) => job?.jobId ?? null)
        : () => store.buckets.take(name, { ratePerSecond: a as number, burst: b as number }, c as number).then((decision) => decision.allowed);
  const count = (command === 'take' ? d : c) as number;
  const results = await Promise.all(Array.from({ length: count }, fire));
  process.stdout.write(`${JSON.stringify(results)}\n`);
} finally {
  await store.disconnect();
}
