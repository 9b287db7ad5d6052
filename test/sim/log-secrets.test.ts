import test from 'ava';
import { Writable } from 'node:stream';
import { ManualClock } from '../../src/infra/clock.js';
import { createLogger } from '../../src/infra/logger.js';
import { startSim } from '../../src/sim/server.js';
import { demoSoftwareStatement, encodedDeviceInfo, fingerprint } from '../helpers/with-sim.js';

test('neither the log lines nor /sim/log contain the client secret or the access token of a DCR round trip', async (t) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const sim = await startSim({ port: 0, clock: new ManualClock(), logger: createLogger({ level: 'trace', destination }) });
  t.teardown(() => sim.close());
  const headers = { 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': '192.0.2.10' };

  const registered = await fetch(`${sim.url}/o/client/register`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ software_statement: demoSoftwareStatement }),
  });
  const { client_id, client_secret } = (await registered.json()) as { client_id: string; client_secret: string };
  // The query-string variant too: its credentials must not reach the logs either.
  const query = new URLSearchParams({ client_id, client_secret, grant_type: 'client_credentials' });
  const issued = await fetch(`${sim.url}/o/client/token?${query}`, { method: 'POST', headers });
  t.is(issued.status, 201);
  const { access_token } = (await issued.json()) as { access_token: string };
  const api = await fetch(`${sim.url}/api/v2/REF30/configuration`, {
    headers: { ...headers, authorization: `Bearer ${access_token}`, 'ap-device-identifier': fingerprint('log-test') },
  });
  t.is(api.status, 200);

  const simLog = await (await fetch(`${sim.url}/sim/log`)).text();
  const logText = lines.join('');
  t.true(lines.length >= 3, 'the simulator wrote one line per request');
  for (const secret of [client_secret, access_token]) {
    t.false(logText.includes(secret), 'log output holds a secret');
    t.false(simLog.includes(secret.slice(0, 16)), '/sim/log holds a secret');
  }
  t.true(simLog.includes('Bearer sha256:'), 'the Authorization header is recorded as a digest');
});
