import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { ensurePrivateDataDir } from '../infra/data-files.js';
import { SealedBox } from '../infra/keyring.js';
import { join } from 'node:path';
import type { Feature, FeatureDeps } from '../features.js';
import { createAdapterClient } from './adapter-client.js';
import { AgentEntitlements } from './entitlements.js';
import { FileRegistry } from './files.js';
import { JobRecords } from './jobs.js';
import { createAgentMetrics } from './metrics.js';
import { agentRouter } from './routes.js';
import { JobRunner } from './runner.js';
import { AgentService } from './service.js';
import { AgentSessions } from './sessions.js';

/** How often an idle replica looks for jobs queued by another process sharing its spool. */
const POLL_MS = 1_000;
/** Spool files whose job is gone and that are older than this are swept, at start-up and then every SWEEP_EVERY_MS. */
const SWEEP_GRACE_MS = 10 * 60_000;
const SWEEP_EVERY_MS = 5 * 60_000;
/** On shutdown, running jobs get this long to finish; the rest run again after their lease. */
const STOP_MS = 5_000;

/**
 * The spool's identity: the queue its jobs wait in. A job runs where its upload is: replicas with
 * their own disks serve their own queues (a restarted replica with the same disk takes its jobs
 * back); replicas that mount one shared spool share one queue.
 */
function spoolQueue(spoolDir: string): string {
  // Uploads and plaintexts wait here: owner only, like the rest of the data dir.
  ensurePrivateDataDir(spoolDir);
  const file = join(spoolDir, '.spool-id');
  let id: string;
  try {
    id = readFileSync(file, 'utf8').trim();
  } catch {
    id = randomBytes(9).toString('base64url');
    try {
      writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o600 });
    } catch {
      // Another process sharing the spool wrote it first: use theirs.
      id = readFileSync(file, 'utf8').trim();
    }
  }
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(id)) throw new Error(`agent: ${file} does not hold a spool id; remove it to start afresh`);
  return `agent-decrypt:${id}`;
}

export type AgentFeature = Feature<AgentService | undefined> & { start(): Promise<void> };

/** The partner agent (SPEC §5); without an `agent` section in the config, /agent is not mounted (404). */
export function createAgentFeature(deps: FeatureDeps): AgentFeature {
  const { config, store, clock } = deps;
  const agent = config.agent;
  if (!agent) return { service: undefined, routers: [], start: async () => undefined };
  const logger = deps.logger.child({ component: 'agent' });
  const metrics = createAgentMetrics(deps.metricsRegistry);
  const queueName = spoolQueue(agent.spoolDir);
  // The root logger: the client names its own component.
  const adapter = createAdapterClient({ config, logger: deps.logger, metricsRegistry: deps.metricsRegistry });
  // The service wakes the runner on enqueue; the runner runs the service's jobs.
  const wake = { runner: undefined as JobRunner | undefined };
  const service = new AgentService({
    config: agent,
    sessions: new AgentSessions(store, agent.sessionTtlMs),
    files: new FileRegistry(store),
    entitlements: new AgentEntitlements(agent.entitlements),
    records: new JobRecords(store, agent.jobs.retentionMs),
    queue: store.jobs,
    queueName,
    adapter,
    metrics,
    clock,
    logger,
    audit: deps.logger.child({ component: 'agent-audit' }),
    wake: () => wake.runner?.wake(),
    box: new SealedBox(deps.keyring.derive('agent-session')),
  });
  const jobs = new JobRunner({
    queue: store.jobs,
    queueName,
    concurrency: agent.jobs.concurrency,
    leaseMs: agent.jobs.leaseMs,
    pollMs: POLL_MS,
    run: (job, lease) => service.runJob(job, lease),
    afterPass: async () => {
      const stats = await store.jobs.stats(queueName, clock.now());
      metrics.queued.set({ state: 'ready' }, stats.ready);
      metrics.queued.set({ state: 'delayed' }, stats.delayed);
      metrics.queued.set({ state: 'running' }, stats.running);
      metrics.oldestWaiting.set(stats.oldestWaitingSince === undefined ? 0 : Math.max(0, clock.now() - stats.oldestWaitingSince) / 1000);
    },
    clock,
    logger,
  });
  wake.runner = jobs;
  // Uploads cut off before their job was queued, or files a crash left behind, do not pile up on a
  // replica that runs for months: the spool is swept at start-up and then periodically.
  let sweeping: Promise<void> | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = (): Promise<void> =>
    (sweeping ??= service
      .sweepSpool(SWEEP_GRACE_MS)
      .then(
        (removed) => {
          if (removed > 0) logger.info({ removed }, 'agent: removed spool files of jobs that are gone');
        },
        (err: unknown) => logger.warn({ err }, 'agent: could not sweep the spool'),
      )
      .finally(() => (sweeping = undefined)));
  return {
    service,
    routers: [agentRouter(service, agent, metrics)],
    start: async () => {
      await sweep();
      sweeper = setInterval(() => void sweep(), SWEEP_EVERY_MS).unref();
      jobs.start();
    },
    close: async () => {
      clearInterval(sweeper);
      await jobs.stop(STOP_MS);
      await sweeping;
      adapter.close?.();
    },
  };
}
