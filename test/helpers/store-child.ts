/**
 * A separate process that opens the store, does one thing and exits (restart-persistence tests):
 *   node --import=tsx test/helpers/store-child.ts write <dataDir> <key> <value> [--redis-url U] [--key-prefix P]
 *   node --import=tsx test/helpers/store-child.ts read  <dataDir> <key>         [--redis-url U] [--key-prefix P]
 * `read` prints the stored value as JSON on stdout (`undefined` when absent). Logs go to stderr.
 * It exits by itself after disconnect(): a leaked handle would make it hang and the test time out.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createLogger } from '../../src/infra/logger.js';
import { createStore } from '../../src/infra/store.js';
import { RESTART_NAMESPACE } from '../infra/store-helpers.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'redis-url': { type: 'string' }, 'key-prefix': { type: 'string' } },
});
const [command, dataDir, key, value] = positionals;
if (!dataDir || !key || (command === 'write' ? value === undefined : command !== 'read')) {
  console.error('usage: store-child.ts write|read <dataDir> <key> [value] [--redis-url U] [--key-prefix P]');
  process.exit(2);
}

const store = await createStore({
  dataDir,
  redisUrl: values['redis-url'],
  keyPrefix: values['key-prefix'],
  connectTimeoutMs: 20_000,
  logger: createLogger({ level: 'warn', destination: pino.destination({ fd: 2, sync: true }) }),
});
try {
  const records = store.namespace<string>(RESTART_NAMESPACE);
  if (command === 'write') {
    await records.set(key, value as string);
  } else {
    const stored = await records.get(key);
    process.stdout.write(stored === undefined ? 'undefined\n' : `${JSON.stringify(stored)}\n`);
  }
} finally {
  await store.disconnect();
}
