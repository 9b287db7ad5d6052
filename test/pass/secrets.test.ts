import test, { type ExecutionContext } from 'ava';
import { createClient } from '@keyv/redis';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeviceContext } from '../../src/pass/client.js';
import { withRedis, freshPrefix } from '../helpers/with-redis.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';
import { APP_ID, deviceAddress, newDeviceId, registeredInfo, withPass, type PassFixture } from '../helpers/pass-fixture.js';

const redisUrl = withRedis(test);

/** Every secret the simulator handed out: client secrets and access tokens (from its own state). */
function secretsOf(f: SimFixture): string[] {
  const secrets = [...[...f.sim.state.clients.values()].map((c) => c.clientSecret), ...f.sim.state.tokens.keys()];
  if (secrets.length < 3) throw new Error('expected a client secret and at least two access tokens');
  return secrets;
}

/** Registration, a call, and a proactive refresh (a second token sealed and stored). */
async function exercise(f: SimFixture, p: PassFixture): Promise<void> {
  const client = deviceAddress();
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client });
  const ctx: DeviceContext = { device, client };
  await p.services.pass.configuration(ctx);
  f.clock.advance(6 * 3600_000 - 300_000); // into the refresh-ahead window of the 6 h token
  await p.services.pass.profiles(ctx);
  await p.services.registry.idle();
  await p.services.pass.profileForMvpd(ctx, 'Cablevision');
}

function assertNoSecret(t: ExecutionContext, haystack: string, secrets: string[], where: string) {
  for (const secret of secrets) t.false(haystack.includes(secret), `a secret appears in ${where}`);
}

test('on Redis, no raw key or value holds a client secret or an access token; neither do the logs', async (t) => {
  const f = await withSim(t);
  const keyPrefix = freshPrefix();
  const p = await withPass(t, f, { redisUrl: redisUrl(), keyPrefix });
  await exercise(f, p);
  const secrets = secretsOf(f);

  const redis = createClient({ url: redisUrl() });
  await redis.connect();
  t.teardown(() => redis.quit().then(() => undefined));
  const dump: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: `${keyPrefix}:*`, COUNT: 100 })) {
    for (const key of Array.isArray(batch) ? batch : [batch]) {
      const type = await redis.type(key);
      const value = type === 'string' ? await redis.get(key) : type === 'hash' ? JSON.stringify(await redis.hGetAll(key)) : `(${type})`;
      dump.push(`${key} ${value}`);
    }
  }
  t.true(dump.some((line) => line.includes(':pass.devices:')), 'the device record is in Redis');
  t.true(dump.some((line) => line.includes(':pass.tokens:')), 'the token record is in Redis');
  assertNoSecret(t, dump.join('\n'), secrets, 'Redis');
  assertNoSecret(t, p.log.text(), secrets, 'the logs');
  t.true(p.log.text().length > 0);
});

test('on the embedded store, the SQLite files hold no client secret or access token; neither do the logs', async (t) => {
  const f = await withSim(t);
  const p = await withPass(t, f);
  await exercise(f, p);
  const secrets = secretsOf(f);

  const files = await readdir(p.dataDir);
  t.true(files.includes('passgate.sqlite'));
  const bytes = await Promise.all(files.map((name) => readFile(join(p.dataDir, name))));
  const text = Buffer.concat(bytes).toString('latin1');
  t.true(text.includes('pass.devices'), 'the device record is in the file');
  assertNoSecret(t, text, secrets, 'the SQLite files');
  assertNoSecret(t, p.log.text(), secrets, 'the logs');
});
