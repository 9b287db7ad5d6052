import type { Keyv } from 'keyv';
import type { Store } from '../infra/store.js';
import type { JobResult } from './schema.js';

/** What GET /agent/v1/drm/jobs/{jobId} shows: queued → running → (retrying ↔ running) → done | failed. */
export type JobState = 'queued' | 'running' | 'retrying' | 'done' | 'failed';

/** A decrypt job as partners and operators see it (SPEC §5), kept `retention` after it ends. */
export interface JobRecord {
  jobId: string;
  partner: string;
  fileId: string;
  state: JobState;
  result?: JobResult;
  /** Adapter callbacks made so far (uploadResult and uploadDecrypted). */
  attempts: number;
  /** The result's message, and which callbacks the adapter took (a rerun after a crash skips them; not shown to partners). */
  message?: string;
  resultSent?: boolean;
  decryptedSent?: boolean;
  createdAt: number;
  finishedAt?: number;
}

/**
 * The job's working state, the queue payload: what a replica needs to (re)run it. The Kep-AgentSession
 * travels here sealed (keyring, bound to the job id) because uploadResult must echo it as
 * `sessionId`; it is never logged and never stored in the clear.
 */
export interface JobWork {
  jobId: string;
  partner: string;
  /** SealedBox.seal(DSID, jobId). */
  sealedSession: string;
  fileId: string;
  principal: string;
  /** The upload's file name in the spool dir. */
  upload: string;
  createdAt: number;
  result?: JobResult;
  message?: string;
  /** uploadResult was answered 2xx. */
  resultSent?: boolean;
  /** uploadDecrypted was answered 2xx (only for success). */
  decryptedSent?: boolean;
  callbackAttempts: number;
  /** Consecutive failed callbacks: the next backoff's exponent. */
  failures: number;
}

/** Job records, fleet-wide, by job id. */
export class JobRecords {
  private readonly records: Keyv<JobRecord>;

  constructor(
    store: Store,
    private readonly retentionMs: number,
  ) {
    this.records = store.namespace<JobRecord>('agent-jobs');
  }

  async put(record: JobRecord): Promise<void> {
    await this.records.set(record.jobId, record, this.retentionMs);
  }

  get(jobId: string): Promise<JobRecord | undefined> {
    return this.records.get(jobId);
  }
}

/** Capped exponential backoff with ±20 % jitter, so a fleet retrying one adapter does not pulse. */
export function backoffMs(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}
