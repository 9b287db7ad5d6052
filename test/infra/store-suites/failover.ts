/**
 * A Redis master killed (SIGKILL) under load, for the cluster and Sentinel test files: while no
 * master serves the keys every store call fails closed (StoreUnavailableError, within the store's
 * deadline: never a hang, never another error, never a second holder of a held lease), and once a
 * replica is promoted the same store objects serve again with nothing lost: records, the lease,
 * the queued jobs (each claimed exactly once) and a subscription that still gets messages.
 */
import type { ExecutionContext } from 'ava';
import { StoreUnavailableError, type Store } from '../../../src/infra/store.js';
import { captureLogger, eventually, openStoreAt, type StoreLocation } from '../store-helpers.js';
import { inbox } from './channels.js';

export interface FailoverTarget {
  /**
   * Makes the replica hold every write so far (WAIT), then kills the master the subscriber
   * connection named `subscriberName` is on (cluster), or the master (Sentinel).
   */
  killMaster(subscriberName: string): Promise<void>;
  /** Resolves once a replica was promoted and every key is served again. */
  promoted(): Promise<void>;
}

const RECORDS = 60;
const JOBS = 10;
const LEASE_MS = 10 * 60_000;

interface LoadReport {
  rounds: number;
  outages: number;
  /** Anything that is neither an answer nor a StoreUnavailableError. */
  unexpected: string[];
  /** A second token for the held lease, or a record read back wrong. */
  wrong: string[];
}

/** Rounds of reads, lease attempts and publishes until `stop()`; what went wrong, collected. */
function load(a: Store, b: Store, now: number) {
  const report: LoadReport = { rounds: 0, outages: 0, unexpected: [], wrong: [] };
  let stopping = false;
  let cleanRounds = 0;
  const devices = a.namespace<string>('devices');
  const running = (async () => {
    while (!stopping) {
      const round = report.rounds++;
      const keys = Array.from({ length: 10 }, (_, i) => (round * 10 + i) % RECORDS);
      const outcomes = await Promise.allSettled([
        ...keys.map(async (k) => {
          const value = await devices.get(`device-${k}`);
          if (value !== `record-${k}`) report.wrong.push(`device-${k} read as ${String(value)}`);
        }),
        b.leases.acquire('dcr:binding-0', LEASE_MS, now).then((token) => {
          if (token !== undefined) report.wrong.push('a second holder got the held lease');
        }),
        a.channels.publish('permits', `round-${round}`),
        b.jobs.stats('decrypt', now),
      ]);
      const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      for (const { reason } of failed) {
        if (reason instanceof StoreUnavailableError) report.outages += 1;
        else report.unexpected.push(String(reason));
      }
      cleanRounds = failed.length === 0 ? cleanRounds + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    report,
    /** Enough clean rounds in a row to have read every record once. */
    clean: () => cleanRounds >= RECORDS / 10,
    async stop() {
      stopping = true;
      await running;
      return report;
    },
  };
}

export async function storeFailover(t: ExecutionContext, location: StoreLocation, target: FailoverTarget): Promise<void> {
  const now = Date.now();
  const a = await openStoreAt(t, location);
  const bLog = captureLogger(); // shown when the subscription does not follow
  const b = await openStoreAt(t, location, bLog.logger);
  const devices = a.namespace<string>('devices');
  for (let k = 0; k < RECORDS; k++) await devices.set(`device-${k}`, `record-${k}`);
  const token = await a.leases.acquire('dcr:binding-0', LEASE_MS, now);
  if (!token) return t.fail('no lease');
  for (let j = 0; j < JOBS; j++) t.true(await a.jobs.enqueue('decrypt', `job-${j}`, `payload-${j}`, now));
  const received = inbox();
  await b.channels.subscribe('permits', received.handler);

  const running = load(a, b, now);
  await eventually(async () => running.report.rounds >= 3);
  await target.killMaster(`passgate:${location.keyPrefix ?? ''}:sub`);
  t.true(await eventually(async () => running.report.outages > 0, 30_000), 'calls fail while the master is gone');
  await target.promoted();
  t.true(await eventually(async () => running.clean(), 30_000), 'whole rounds succeed again after the promotion');
  const report = await running.stop();

  t.deepEqual(report.unexpected, [], 'every failure was store_unavailable');
  t.deepEqual(report.wrong, [], 'no record lost, no second lease holder');
  for (let k = 0; k < RECORDS; k++) t.is(await devices.get(`device-${k}`), `record-${k}`);
  t.true(await a.leases.renew('dcr:binding-0', token, LEASE_MS, now), 'the lease is still held by its token');
  const claimed: string[] = [];
  for (let job = await b.jobs.claim('decrypt', 60_000, now); job; job = await b.jobs.claim('decrypt', 60_000, now)) claimed.push(job.jobId);
  t.deepEqual(claimed.sort(), Array.from({ length: JOBS }, (_, j) => `job-${j}`).sort(), 'every queued job, each claimed once');
  const followed = await eventually(async () => {
    await a.channels.publish('permits', 'after-failover');
    return received.messages.includes('after-failover');
  }, 20_000, 500);
  if (!followed) t.log(bLog.lines().filter((line) => Number(line.level) >= 20).map((line) => `${String(line.msg)} ${JSON.stringify({ ...line, msg: undefined, time: undefined, pid: undefined, hostname: undefined })}`).slice(-40).join('\n'));
  t.true(followed, 'the subscription followed the failover');
}
