/**
 * A second passgate process serving one device (fleet tests):
 *   node --import=tsx test/helpers/pass-child.ts <simUrl> <dataDir> <deviceId> <ip> <now> [--redis-url U] [--key-prefix P]
 * The keyring text comes in the PASS_CHILD_KEYRING environment variable. It opens the store,
 * builds the Pass services (ManualClock at <now>), prints `ready`, waits for a line on stdin (so
 * racers start together), registers the device, asks for the configuration, prints
 * `{"clientId":…,"mvpds":N}` (or `{"error":…}`) and exits after closing everything. Logs go to stderr.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/infra/clock.js';
import { Keyring } from '../../src/infra/keyring.js';
import { createLogger } from '../../src/infra/logger.js';
import { createStore } from '../../src/infra/store.js';
import { createPassServices } from '../../src/pass/service.js';
import { APP_ID, passConfig, registeredInfo } from './pass-fixture.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'redis-url': { type: 'string' }, 'key-prefix': { type: 'string' } },
});
const [simUrl, dataDir, deviceId, ip, now] = positionals;
const keyringText = process.env.PASS_CHILD_KEYRING;
if (!simUrl || !dataDir || !deviceId || !ip || !now || !Number.isFinite(Number(now)) || !keyringText) {
  console.error('usage: PASS_CHILD_KEYRING=… pass-child.ts <simUrl> <dataDir> <deviceId> <ip> <now> [--redis-url U] [--key-prefix P]');
  process.exit(2);
}

const logger = createLogger({ level: 'warn', destination: pino.destination({ fd: 2, sync: true }) });
const store = await createStore({ dataDir, redisUrl: values['redis-url'], keyPrefix: values['key-prefix'], connectTimeoutMs: 20_000, logger });
const services = createPassServices({
  config: passConfig(simUrl),
  store,
  keyring: Keyring.parse(keyringText),
  metricsRegistry: new Registry(),
  logger,
  clock: new ManualClock(Number(now)),
});
try {
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  const client = { ip, port: 50_123 };
  try {
    const device = await services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client });
    const configuration = await services.pass.configuration({ device, client });
    process.stdout.write(`${JSON.stringify({ clientId: device.clientId, mvpds: configuration.mvpds.length })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ error: err instanceof Error ? err.message : String(err) })}\n`);
  }
} finally {
  await services.close();
  await store.disconnect();
}
