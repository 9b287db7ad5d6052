/**
 * License traffic through a Redis master failure, for the cluster and Sentinel fleet tests: while
 * no master serves the store every license-token answers 503 store_unavailable (the clock moved
 * past every L1, so nothing is granted from memory), and once a replica is promoted every device
 * is granted again. Every answer is 200 or 503 store_unavailable, and the audited grants are
 * exactly the 200s: none lost, none duplicated.
 */
import type { ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { problemOf, type Device, type DrmFixture } from './drm-fixture.js';

export interface MasterFailure {
  /** Makes sure no replica can take over yet, then kills the master. */
  killMaster(): Promise<void>;
  /** True once the deployment itself says there is no master (cluster_state:fail, sdown…). */
  noMaster(): Promise<boolean>;
  /** Lets a replica take over; resolves once it did. */
  promote(): Promise<void>;
}

export async function licenseTrafficThroughFailover(t: ExecutionContext, [a, b]: [DrmFixture, DrmFixture], failure: MasterFailure): Promise<void> {
  const drm = { system: 'widevine', contentId: 'ref30-movie' };
  const devices: Device[] = [];
  for (let i = 0; i < 6; i++) {
    const device = await a.signedIn();
    t.is((await a.authorize(device, 'REF30', drm)).status, 200);
    devices.push(device);
  }
  const answers: Array<{ status: number; code?: string }> = [];
  /** One request per device, alternating replicas; every answer recorded. */
  const round = () =>
    Promise.all(
      devices.map(async (device, i) => {
        const response = await (i % 2 === 0 ? a : b).licenseToken(device, 'REF30', 'widevine', 'ref30-movie');
        const answer = response.status === 200 ? { status: 200 } : { status: response.status, code: (await problemOf(response)).code };
        if (response.status === 200) await response.body?.cancel();
        answers.push(answer);
        return answer.status;
      }),
    );
  t.deepEqual(await round(), devices.map(() => 200));

  await failure.killMaster();
  a.clock.advance(5000); // past every L1 (permit_l1_ms, devices.l1_ms): answers come from the store
  for (let i = 0; i < 300 && !(await failure.noMaster()); i++) await sleep(100);
  t.true(await failure.noMaster(), 'the deployment saw the master fail');
  t.deepEqual(await round(), devices.map(() => 503), 'fail closed: no grant while there is no master');
  t.true(answers.slice(-devices.length).every((answer) => answer.code === 'store_unavailable'));

  await failure.promote();
  let recovered = false;
  for (let i = 0; i < 100 && !recovered; i++) {
    recovered = (await round()).every((status) => status === 200);
    if (!recovered) await sleep(100);
  }
  t.true(recovered, 'every device is granted again once the replica took over');

  const unexpected = answers.filter((answer) => answer.status !== 200 && !(answer.status === 503 && answer.code === 'store_unavailable'));
  t.deepEqual(unexpected, [], 'only 200 or 503 store_unavailable');
  const grants = [...a.audit(), ...b.audit()].filter((line) => line.via === 'license-token' && line.outcome === 'grant');
  t.is(grants.length, answers.filter((answer) => answer.status === 200).length, 'each 200 is one grant: none lost, none duplicated');
}
