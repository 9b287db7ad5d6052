import test, { type ExecutionContext } from 'ava';
import { decodeProtectedHeader } from 'jose';
import { registerAndSignIn, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';

/**
 * README "Keys": the two-step rotation, run as a rolling update of two replicas on one Redis while a
 * signed-in device keeps calling both. Step 1 adds `k2:…:verify` everywhere (k1 still signs), step 2
 * promotes k2 (`k2,k1:verify`). Between and during the restarts the replicas disagree about which
 * key signs, and each must accept what the other issued and sealed: zero 401 and zero 5xx.
 */

const redisUrl = withRedis(test);

const keyText = (id: string, fill: number) => `${id}:${Buffer.alloc(32, fill).toString('base64')}`;
const K1 = keyText('k1', 1);
const K2 = keyText('k2', 2);
const playback = { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } };

type Name = 'A' | 'B';

interface Answer {
  replica: Name;
  phase: string;
  route: string;
  status: number;
  code?: string;
}

test('two-step key rotation over a rolling update of two replicas: zero 401/5xx for a device calling both; after step 2 new tokens carry k2', async (t) => {
  t.timeout(120_000);
  // One device calls the upstream far more often than the per-IP throttle allows: lifted here (the test is about keys).
  const file = { throttle: { rate_per_second: 1, burst: 1_000 } };
  const a = await withPassgate(t, { redisUrl: redisUrl(), file, simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } }, env: { PASSGATE_KEYS: K1 } });
  const shared = { redisUrl: redisUrl(), file, keyPrefix: a.keyPrefix as string, sim: a.sim, appKeys: { demo: a.apps.demo.key, roku: a.apps.roku.key } };
  const live = new Map<Name, PassgateFixture>([['A', a], ['B', await withPassgate(t, { ...shared, env: { PASSGATE_KEYS: K1 } })]]);

  const device = await registerAndSignIn(a);
  let token = device.deviceToken;
  const answers: Answer[] = [];
  const kids: Array<{ phase: string; replica: Name; kid: unknown }> = [];
  let phase = 'start [k1]';
  let rounds = 0;
  let running = true;

  const record = async (replica: Name, route: string, response: Response) => {
    const body = response.status === 200 ? undefined : ((await response.json().catch(() => ({}))) as { code?: string });
    answers.push({ replica, phase, route, status: response.status, ...(body?.code ? { code: body.code } : {}) });
    return response;
  };
  const call = (f: PassgateFixture, route: string, body?: unknown) =>
    f.call(route, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  /** The device re-registers with its secret on `replica` and continues with the token it issued. */
  const reregister = async (replica: Name, f: PassgateFixture) => {
    const response = await record(replica, 'POST /v1/devices', await f.register({ deviceId: device.deviceId, deviceSecret: device.deviceSecret }));
    if (response.status !== 200) return;
    token = ((await response.json()) as { deviceToken: string }).deviceToken;
    kids.push({ phase, replica, kid: decodeProtectedHeader(token).kid });
  };

  // What a Service does in a rolling update: a replica taken out gets no new requests, and is
  // stopped only once the ones it is serving are answered.
  const inFlight = new Map<PassgateFixture, Promise<void>>();
  const using = async (replica: Name, work: (f: PassgateFixture, replica: Name) => Promise<void>) => {
    const f = live.get(replica);
    if (!f) return;
    const done = work(f, replica);
    inFlight.set(f, done);
    try {
      await done;
    } finally {
      inFlight.delete(f);
    }
  };

  // The device: every round calls each live replica (profile, authorize, a license token) and takes
  // a fresh token from one of them, alternating, so tokens issued by either reach both.
  const loop = (async () => {
    while (running) {
      for (const replica of ['A', 'B'] as const) {
        await using(replica, async (f) => {
          await record(replica, 'GET /v1/profile', await call(f, '/v1/profile'));
          await record(replica, 'POST /v1/authorize', await call(f, '/v1/authorize', playback));
          await record(replica, 'POST /v1/license-token', await call(f, '/v1/license-token', playback));
        });
      }
      await using(rounds % 2 === 0 ? 'A' : 'B', (f, replica) => reregister(replica, f));
      rounds++;
    }
  })();
  /** Lets the device run `n` more rounds against what is live now. */
  const more = async (n: number) => {
    const until = rounds + n;
    while (rounds < until) await new Promise((resolve) => setTimeout(resolve, 20));
  };
  /** A rolling restart of one replica: out of the Service, stopped, started with `keys`, back in. */
  const restart = async (replica: Name, keys: string) => {
    const old = live.get(replica) as PassgateFixture;
    live.delete(replica);
    await inFlight.get(old)?.catch(() => undefined);
    await old.passgate.close();
    live.set(replica, await withPassgate(t, { ...shared, env: { PASSGATE_KEYS: keys } }));
    await more(2);
  };

  try {
    await more(2);
    phase = 'step 1: add k2 as verify-only';
    await restart('B', `${K1},${K2}:verify`);
    await restart('A', `${K1},${K2}:verify`);
    phase = 'step 2: promote k2';
    await restart('A', `${K2},${K1}:verify`);
    await restart('B', `${K2},${K1}:verify`);
    phase = 'after step 2';
    await more(2);
  } finally {
    running = false;
    await loop;
  }

  const bad = answers.filter((x) => x.status === 401 || x.status >= 500);
  t.deepEqual(bad, [], 'no 401 and no 5xx at any point of the rollout');
  t.deepEqual(answers.filter((x) => x.status !== 200), [], 'every call succeeded');
  t.true(answers.length >= 8 * 3 * 2, `the device kept calling (${answers.length} answers)`);
  for (const replica of ['A', 'B'] as const) {
    t.true(answers.some((x) => x.replica === replica && x.phase.startsWith('step 2')), `replica ${replica} served during step 2`);
  }
  // k1 signs until step 2 (a verify-only k2 never signs); after it, tokens from both replicas carry k2.
  t.true(kids.filter((k) => !k.phase.startsWith('step 2') && k.phase !== 'after step 2').every((k) => k.kid === 'k1'));
  const after = kids.filter((k) => k.phase === 'after step 2');
  // Sorted: which replica issues first depends on timing (ava compares Sets in order).
  t.deepEqual([...new Set(after.map((k) => k.replica))].sort(), ['A', 'B'], 'both replicas issued a token after step 2');
  t.true(after.every((k) => k.kid === 'k2'));
  logSummary(t, answers);
});

function logSummary(t: ExecutionContext, answers: Answer[]) {
  const counts = new Map<string, number>();
  for (const x of answers) counts.set(`${x.phase} ${x.replica}`, (counts.get(`${x.phase} ${x.replica}`) ?? 0) + 1);
  t.log([...counts].map(([k, n]) => `${k}: ${n}`).join('; '));
}
