import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfig } from '../config/agent.js';
import { envelopeKey } from '../config/agent.js';
import { Problem } from '../http/problem.js';
import { storeCall } from '../http/store-call.js';
import type { Clock } from '../infra/clock.js';
import type { SealedBox } from '../infra/keyring.js';
import { flushNow, type Logger } from '../infra/logger.js';
import type { ClaimedJob, JobQueueStore } from '../infra/store.js';
import type { AdapterClient, AdapterOutcome } from './adapter-client.js';
import { EnvelopeError, authenticateHeaderFromFile, unprotect, type EnvelopeHeader } from './envelope.js';
import type { AgentEntitlements } from './entitlements.js';
import type { FileRegistry } from './files.js';
import { backoffMs, type JobRecord, type JobRecords, type JobWork } from './jobs.js';
import type { AgentMetrics, CallbackCall } from './metrics.js';
import type { RunOutcome } from './runner.js';
import type { JobResult } from './schema.js';
import { AgentSessions } from './sessions.js';

/** The plaintext's file name for the adapter: the file id's letters, digits, '.', '-' and '_' (never a path, never only dots). */
export function uploadName(fileId: string): string {
  const name = fileId.replace(/[^\w.-]+/g, '_').slice(0, 200);
  return /^\.*$/.test(name) ? 'file' : name;
}

export type AuthenticateAnswer = { result: 'allow'; fileType: 'drm' | 'unknown'; fileId: string };

export interface AgentServiceDeps {
  config: AgentConfig;
  sessions: AgentSessions;
  files: FileRegistry;
  entitlements: AgentEntitlements;
  records: JobRecords;
  queue: JobQueueStore;
  queueName: string;
  adapter: AdapterClient;
  metrics: AgentMetrics;
  clock: Clock;
  logger: Logger;
  /** The audit log: one line per decision (authenticate outcomes, job results). */
  audit: Logger;
  /** A job was queued on this replica: run it now. */
  wake: () => void;
  /** Seals the DSID inside a queued job (keyring.derive('agent-session')). */
  box: SealedBox;
}

/**
 * The partner agent's logic (SPEC §5): authenticate (the file registry's outcomes and the
 * entitlement rules), decrypt jobs (judge the bytes, remove the DRM, call the adapter back), job
 * status. No Koa types: routes.ts parses and shapes.
 */
export class AgentService {
  private readonly keys: Map<string, Buffer>;

  constructor(private readonly deps: AgentServiceDeps) {
    this.keys = new Map(deps.config.keys.map((k) => [k.id, envelopeKey(k.secret)]));
  }

  private stored<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return storeCall(`agent: ${what}`, this.deps.logger, fn);
  }

  /** POST /agent/v1/drm/authenticate: remembers DSID → principal (whatever the outcome), then judges the file. */
  async authenticate(partner: string, dsid: string, fileId: string, principal: string): Promise<AuthenticateAnswer> {
    const { sessions, files, entitlements, clock, audit } = this.deps;
    await this.stored('remember an agent session', () => sessions.remember(partner, dsid, principal, clock.now()));
    const file = await this.stored('read the file registry', () => files.get(fileId));
    // Written through at once: a decision's line must outlive a replica killed right after it.
    const decided = (fields: Record<string, string>) => {
      audit.info({ partner, session: AgentSessions.handle(dsid), fileId, principal, ...fields }, 'agent decision');
      flushNow(audit);
    };
    if (!file) {
      decided({ decision: 'allow', fileType: 'unknown' });
      return { result: 'allow', fileType: 'unknown', fileId };
    }
    if (file.type === 'plain') {
      decided({ decision: 'not_drm_file' });
      throw new Problem('not_drm_file', 'This file is registered as not DRM-protected: open it without decryption.');
    }
    if (!entitlements.allows(principal, file.label)) {
      decided({ decision: 'denied', label: file.label });
      throw new Problem('agent_access_denied', 'This user may not open this DRM file.');
    }
    decided({ decision: 'allow', fileType: 'drm', label: file.label });
    return { result: 'allow', fileType: 'drm', fileId };
  }

  /** The principal a DSID was authenticated for; 401 unknown_agent_session otherwise. */
  async principalOf(partner: string, dsid: string): Promise<string> {
    const principal = await this.stored('read an agent session', () => this.deps.sessions.principalOf(partner, dsid));
    if (principal === undefined) throw new Problem('unknown_agent_session', 'No agent session with this Kep-AgentSession for this partner (unknown or expired): call authenticate first.');
    return principal;
  }

  /** POST /agent/v1/drm/decrypt, once the upload is in the spool: the job is recorded and queued; its id. */
  async enqueue(partner: string, dsid: string, principal: string, jobId: string, upload: { fileId: string; file: string }): Promise<string> {
    const { records, queue, queueName, clock } = this.deps;
    const now = clock.now();
    const work: JobWork = { jobId, partner, sealedSession: this.deps.box.seal(dsid, jobId), fileId: upload.fileId, principal, upload: upload.file, createdAt: now, callbackAttempts: 0, failures: 0 };
    try {
      await this.stored('record a decrypt job', () => records.put({ jobId, partner, fileId: upload.fileId, state: 'queued', attempts: 0, createdAt: now }));
      await this.stored('queue a decrypt job', () => queue.enqueue(queueName, jobId, JSON.stringify(work), now));
    } catch (error) {
      await unlink(join(this.deps.config.spoolDir, upload.file)).catch(() => undefined);
      throw error;
    }
    this.deps.wake();
    return jobId;
  }

  /** An upload that will not become a job (its form was invalid). */
  async discardUpload(file: string): Promise<void> {
    await unlink(this.spool(file)).catch(() => undefined);
  }

  /** GET /agent/v1/drm/jobs/{jobId}: only the partner that queued it sees it. */
  async status(partner: string, jobId: string): Promise<Pick<JobRecord, 'jobId' | 'state' | 'result' | 'attempts'>> {
    const record = await this.stored('read a decrypt job', () => this.deps.records.get(jobId));
    if (!record || record.partner !== partner) throw new Problem('not_found', 'No decrypt job with this id for this partner.');
    return { jobId: record.jobId, state: record.state, ...(record.result ? { result: record.result } : {}), attempts: record.attempts };
  }

  private spool(name: string): string {
    return join(this.deps.config.spoolDir, name);
  }

  private plainOf(work: JobWork): string {
    return this.spool(`${work.jobId}.plain`);
  }

  /** The verdict on the uploaded bytes: the result, and for `success` the plaintext next to the upload. */
  private async judge(work: JobWork): Promise<{ result: JobResult; message: string }> {
    const upload = this.spool(work.upload);
    if (!existsSync(upload)) return { result: 'error', message: 'The upload is no longer in the spool.' };
    let header: EnvelopeHeader;
    try {
      // The header checked under its key first: a label, file id or key id someone edited is `corrupt`, never judged.
      header = await authenticateHeaderFromFile(upload, (keyId) => this.keys.get(keyId));
    } catch (error) {
      if (error instanceof EnvelopeError) {
        return error.reason === 'not_envelope' ? { result: 'not_drm', message: 'The file is not a passgate DRM file.' } : { result: 'corrupt', message: `The DRM file is damaged (${error.reason}).` };
      }
      throw error;
    }
    if (header.fileId !== work.fileId) return { result: 'corrupt', message: 'The DRM file belongs to another file id.' };
    if (!this.deps.entitlements.allows(work.principal, header.label)) return { result: 'denied', message: 'This user may not open this DRM file.' };
    const part = `${this.plainOf(work)}.part`;
    try {
      await unprotect(createReadStream(upload), createWriteStream(part, { mode: 0o600 }), (keyId) => this.keys.get(keyId));
      await rename(part, this.plainOf(work));
      return { result: 'success', message: 'Decrypted.' };
    } catch (error) {
      await unlink(part).catch(() => undefined);
      if (error instanceof EnvelopeError) return { result: 'corrupt', message: `The DRM file cannot be decrypted (${error.reason}).` };
      throw error;
    }
  }

  private callback(work: JobWork, call: CallbackCall, outcome: AdapterOutcome): 'ok' | 'retry' | 'failed' {
    work.callbackAttempts++;
    const verdict = outcome.ok ? 'ok' : outcome.retryable ? 'retry' : 'failed';
    this.deps.metrics.callbacks.inc({ call, outcome: verdict });
    if (!outcome.ok) this.deps.logger.warn({ jobId: work.jobId, call, status: outcome.status, reason: outcome.reason, retryable: outcome.retryable }, 'agent: the adapter did not take a callback');
    return verdict;
  }

  /** One run of a decrypt job (the runner holds its lease): judge, then call the adapter until it answers. */
  async runJob(job: ClaimedJob, lease: { lost: () => boolean }): Promise<RunOutcome> {
    const { records, clock, config } = this.deps;
    const work = JSON.parse(job.payload) as JobWork;
    // A run that finished but died before leaving the queue: nothing is sent twice.
    const existing = await this.stored('read a decrypt job', () => records.get(work.jobId));
    if (existing?.state === 'done' || existing?.state === 'failed') return { done: true, cleanup: () => this.cleanup(work) };
    // Callbacks a run that died had already made (recorded as each was answered), with their verdict.
    if (existing?.resultSent && existing.result) Object.assign(work, { result: existing.result, message: existing.message ?? work.message, resultSent: true });
    if (existing?.decryptedSent) work.decryptedSent = true;
    const record = (state: JobRecord['state'], finishedAt?: number) =>
      this.stored('record a decrypt job', () =>
        records.put({
          jobId: work.jobId,
          partner: work.partner,
          fileId: work.fileId,
          state,
          ...(work.result ? { result: work.result } : {}),
          ...(work.message !== undefined ? { message: work.message } : {}),
          ...(work.resultSent ? { resultSent: true } : {}),
          ...(work.decryptedSent ? { decryptedSent: true } : {}),
          attempts: work.callbackAttempts,
          createdAt: work.createdAt,
          ...(finishedAt !== undefined ? { finishedAt } : {}),
        }),
      ).catch(() => undefined);

    // A rerun after a crash may find the plaintext gone (it is redone) or the verdict not yet made.
    if (work.result === undefined || (work.result === 'success' && !work.decryptedSent && !existsSync(this.plainOf(work)))) {
      await record('running');
      Object.assign(work, await this.judge(work).catch((error: unknown) => {
        this.deps.logger.error({ err: error, jobId: work.jobId }, 'agent: a decrypt job failed unexpectedly');
        return { result: 'error' as const, message: 'The agent could not process the file.' };
      }));
    }
    if (lease.lost()) return { done: false, payload: JSON.stringify(work), runAfter: clock.now() };

    const retry = async (): Promise<RunOutcome> => {
      work.failures++;
      await record('retrying');
      return { done: false, payload: JSON.stringify(work), runAfter: clock.now() + backoffMs(work.failures, config.jobs.retryInitialMs, config.jobs.retryMaxMs) };
    };
    const result = work.result as JobResult;
    let sessionId: string;
    try {
      sessionId = this.deps.box.open(work.sealedSession, work.jobId).plaintext;
    } catch (error) {
      // Its keyring entry was removed while the job waited: the adapter cannot be told which session.
      this.deps.logger.error({ err: error, jobId: work.jobId }, 'agent: the session of a queued job cannot be opened (keyring changed); the job fails');
      return this.finish(work, 'failed', record, 'unopenable');
    }
    if (!work.resultSent) {
      const verdict = this.callback(work, 'uploadResult', await this.deps.adapter.uploadResult({ jobId: work.jobId, sessionId, fileId: work.fileId, result, message: work.message ?? '' }));
      if (verdict === 'retry') return retry();
      if (verdict === 'failed') return this.finish(work, 'failed', record, sessionId);
      work.resultSent = true;
      work.failures = 0;
      // Said at once, so that a run after a crash does not call again for what the adapter has.
      if (result === 'success') await record('running');
    }
    if (result === 'success' && !work.decryptedSent) {
      const verdict = this.callback(work, 'uploadDecrypted', await this.deps.adapter.uploadDecrypted({ jobId: work.jobId, fileId: work.fileId, path: this.plainOf(work), filename: uploadName(work.fileId) }));
      if (verdict === 'retry') return retry();
      if (verdict === 'failed') return this.finish(work, 'failed', record, sessionId);
      work.decryptedSent = true;
    }
    return this.finish(work, 'done', record, sessionId);
  }

  private async finish(work: JobWork, state: 'done' | 'failed', record: (state: JobRecord['state'], finishedAt?: number) => Promise<unknown>, sessionId: string): Promise<RunOutcome> {
    const now = this.deps.clock.now();
    const result = work.result ?? 'error';
    await record(state, now);
    this.deps.metrics.jobs.inc({ result });
    this.deps.metrics.jobDuration.observe({ result }, Math.max(0, now - work.createdAt) / 1000);
    this.deps.audit.info(
      { partner: work.partner, session: AgentSessions.handle(sessionId), jobId: work.jobId, fileId: work.fileId, principal: work.principal, decision: result, delivered: state === 'done' },
      'agent job result',
    );
    flushNow(this.deps.audit);
    // The plaintext goes before the job leaves the queue: a crash from here on never leaves it behind.
    await Promise.all([this.plainOf(work), `${this.plainOf(work)}.part`].map((path) => unlink(path).catch(() => undefined)));
    return { done: true, cleanup: () => this.cleanup(work) };
  }

  /** After the job left the queue: its files go (a crash before this leaves them to sweepSpool). */
  private async cleanup(work: JobWork): Promise<void> {
    await Promise.all([this.spool(work.upload), this.plainOf(work), `${this.plainOf(work)}.part`].map((path) => unlink(path).catch(() => undefined)));
  }

  /**
   * Start-up: files in the spool whose job is gone (a crash between a job's end and its cleanup, or
   * an upload cut before its job was queued). Only files older than `graceMs`, so an upload being
   * received right now by another process sharing the spool is left alone.
   */
  async sweepSpool(graceMs: number): Promise<number> {
    const { queue, queueName, config } = this.deps;
    let removed = 0;
    for (const name of await readdir(config.spoolDir)) {
      const match = /^([0-9a-f-]{36})\.(upload|plain)(\.part)?$/.exec(name);
      if (!match) continue;
      const path = this.spool(name);
      const modified = (await stat(path).catch(() => undefined))?.mtimeMs;
      if (modified === undefined || Date.now() - modified <= graceMs) continue;
      if (!match[3] && (await queue.get(queueName, match[1] as string))) continue;
      await unlink(path).then(() => removed++, () => undefined);
    }
    return removed;
  }
}
