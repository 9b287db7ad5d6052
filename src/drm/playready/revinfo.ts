import { createHash } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import { Singleflight } from '../../infra/singleflight.js';
import { logStoreFailure } from '../../http/store-call.js';
import type { Store } from '../../infra/store.js';
import { MAX_REVINFO_BYTES, checkRevInfo } from './revinfo-xml.js';

export { MAX_REVINFO_BYTES, checkRevInfo, type RevInfoCheck } from './revinfo-xml.js';
export { revInfoRoutes } from './routes.js';

/**
 * The PlayReady revocation data (SPEC §4 "Revocation" (a), drm.md §4): Microsoft's RevInfo
 * document, downloaded on a schedule with conditional GETs, checked before it is stored, and kept
 * in the shared store so every replica serves the same copy to in-cluster PlayReady servers.
 */

/** drm.md §4: the documented download address (a redirect to the current RevInfo2 file). */
export const DEFAULT_REVINFO_URL = 'https://aka.ms/revinfo';
/** drm.md §4: "must update … revocation lists … once a week". */
export const DEFAULT_REFRESH_MS = 7 * 24 * 3600_000;
/** How soon a failed refresh is tried again (fleet-wide), and how often replicas look at the store. */
export const DEFAULT_RETRY_MS = 3600_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const RECORD_KEY = 'current';
const LEASE_NAME = 'playready-revinfo-refresh';

export interface RevInfoRecord {
  xml: string;
  /** sha256 of the XML (hex): the ETag passgate serves, identical on every replica. */
  sha256: string;
  /** The upstream's validators, sent back on the next conditional GET. */
  etag?: string;
  lastModified?: string;
  /** When this content was downloaded (epoch ms, injected clock). */
  fetchedAt: number;
  /** When the upstream last confirmed it current: a 200 or a 304 (epoch ms). */
  checkedAt: number;
  listIds: string[];
}

export type RefreshResult = 'updated' | 'not_modified' | 'failed';

/** A WHATWG fetch: the global one by default, tests may wrap it. */
export type RevInfoFetch = (url: string, init: RequestInit) => Promise<Response>;

export interface RevInfoServiceDeps {
  store: Store;
  /** Default: the global fetch. Not the UpstreamClient: the documented URL redirects (aka.ms → fwlink → file). */
  fetch?: RevInfoFetch;
  /** Default DEFAULT_REVINFO_URL. */
  url?: string;
  /** Refresh when the stored copy was confirmed longer ago than this (default 7 days). */
  refreshMs?: number;
  /** Retry and look-at-the-store period (default 1 h, at most refreshMs). */
  retryMs?: number;
  /** Whole download, redirects included (default 30 s). */
  timeoutMs?: number;
  clock: Clock;
  logger: Logger;
  metricsRegistry: Registry;
  /** Fleet-wide: at most one replica tries a due refresh per retryMs. Default store.leases. */
  leases?: Store['leases'];
}

/** Why a download was not taken. */
class RefreshFailure extends Error {}

/** The store failed (read or write) during a refresh: not the download's fault. */
class StoreFailure extends Error {
  constructor(readonly error: unknown) {
    super('the store failed during a RevInfo refresh');
  }
}

/** One refresh attempt, shared by concurrent callers: its result, and the store's error when that is why it failed. */
interface RefreshOutcome {
  result: RefreshResult;
  storeError?: unknown;
}

export class RevInfoService {
  readonly url: string;
  readonly refreshMs: number;
  readonly retryMs: number;
  private readonly timeoutMs: number;
  private readonly records;
  private readonly leases: Store['leases'];
  private readonly fetch: RevInfoFetch;
  private readonly fetches: Counter<'result'>;
  private readonly flights = new Singleflight<RefreshOutcome>();
  /** checkedAt of the stored copy as last seen (for the age gauge, read on scrape). */
  private seenCheckedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: RevInfoServiceDeps) {
    const url = new URL(deps.url ?? DEFAULT_REVINFO_URL);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('the RevInfo url must be http(s)');
    this.url = url.href;
    this.refreshMs = positive(deps.refreshMs, DEFAULT_REFRESH_MS);
    this.retryMs = Math.min(this.refreshMs, positive(deps.retryMs, DEFAULT_RETRY_MS));
    this.timeoutMs = positive(deps.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.records = deps.store.namespace<RevInfoRecord>('playready-revinfo');
    this.leases = deps.leases ?? deps.store.leases;
    this.fetch = deps.fetch ?? ((input, init) => fetch(input, init));

    this.fetches = new Counter({
      name: 'passgate_drm_playready_revinfo_fetches_total',
      help: 'PlayReady RevInfo downloads by result (updated, not_modified, failed)',
      labelNames: ['result'],
      registers: [deps.metricsRegistry],
    });
    for (const result of ['updated', 'not_modified', 'failed'] as const) this.fetches.inc({ result }, 0);
    const clock = deps.clock;
    const seen = () => this.seenCheckedAt;
    new Gauge({
      name: 'passgate_drm_playready_revinfo_age_seconds',
      // Age of the last confirmation, not of the download: a 304 proves the copy current, and
      // Microsoft does not publish a new list every week (SPEC §4 alerts past 7 days).
      help: 'Seconds since the upstream last confirmed the stored PlayReady RevInfo current (200 or 304); -1 when none is stored',
      registers: [deps.metricsRegistry],
      collect() {
        const checkedAt = seen();
        this.set(checkedAt === undefined ? -1 : Math.max(0, (clock.now() - checkedAt) / 1000));
      },
    });
  }

  /** The stored copy (any replica's), or undefined before the first successful download. Store errors reject. */
  async current(): Promise<RevInfoRecord | undefined> {
    const record = await this.records.get(RECORD_KEY);
    this.seenCheckedAt = record?.checkedAt;
    return record;
  }

  /**
   * Downloads now (conditional on the stored copy's validators) and stores a valid new copy. Never
   * throws: an unreachable upstream, a bad status, an oversized or invalid document or a store
   * failure is 'failed', and the stored copy stays. Concurrent calls in this process share one download.
   */
  async refresh(): Promise<RefreshResult> {
    const outcome = await this.attempt();
    if (outcome.storeError !== undefined) {
      logStoreFailure(this.deps.logger, outcome.storeError, 'playready: RevInfo refresh (the stored copy stays)');
    }
    return outcome.result;
  }

  /**
   * refresh(), for an operator who asked for it: a store failure rejects with the store's error
   * (the caller answers 503 store_unavailable and logs it) instead of reading as a failed download.
   */
  async refreshNow(): Promise<RefreshResult> {
    const outcome = await this.attempt();
    if (outcome.storeError !== undefined) throw outcome.storeError;
    return outcome.result;
  }

  private attempt(): Promise<RefreshOutcome> {
    return this.flights.do('refresh', async () => {
      const outcome = await this.download().then(
        (result): RefreshOutcome => ({ result }),
        (err: unknown): RefreshOutcome => {
          if (err instanceof StoreFailure) return { result: 'failed', storeError: err.error };
          // warn, not error: the age metric's alert is what pages someone when failures persist.
          this.deps.logger.warn({ err, url: this.url }, 'playready: RevInfo refresh failed; the stored copy stays');
          return { result: 'failed' };
        },
      );
      this.fetches.inc({ result: outcome.result });
      return outcome;
    });
  }

  /**
   * The scheduled step: refreshes when the stored copy is absent or older than refreshMs and this
   * replica wins the lease (held, not released, for retryMs: a failure is retried fleet-wide at most
   * once per retryMs). 'fresh': nothing due; 'busy': another replica has it.
   */
  async refreshIfDue(): Promise<RefreshResult | 'fresh' | 'busy'> {
    const { clock, logger } = this.deps;
    try {
      const record = await this.current();
      if (record && clock.now() - record.checkedAt < this.refreshMs) return 'fresh';
      if ((await this.leases.acquire(LEASE_NAME, this.retryMs, clock.now())) === undefined) return 'busy';
    } catch (err) {
      logger.error({ err }, 'playready: RevInfo schedule could not read the store');
      return 'failed';
    }
    return this.refresh();
  }

  /**
   * Checks at once (start-up: refreshes when absent or older than refreshMs), then every retryMs;
   * the timer never keeps the process alive. Resolves with the start-up check's outcome (never rejects).
   */
  start(): Promise<RefreshResult | 'fresh' | 'busy'> {
    if (!this.timer) {
      // setInterval treats periods above 2^31-1 ms as 1 ms.
      this.timer = setInterval(() => void this.refreshIfDue(), Math.min(this.retryMs, 2 ** 31 - 1));
      this.timer.unref();
    }
    return this.refreshIfDue();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async download(): Promise<'updated' | 'not_modified'> {
    const { clock, logger } = this.deps;
    const stored = await this.fromStore(() => this.current());
    const headers: Record<string, string> = { accept: 'application/xml, text/xml;q=0.9, */*;q=0.1' };
    if (stored?.etag) headers['if-none-match'] = stored.etag;
    if (stored?.lastModified) headers['if-modified-since'] = stored.lastModified;

    const response = await this.fetch(this.url, { headers, redirect: 'follow', signal: AbortSignal.timeout(this.timeoutMs) });
    const now = clock.now();
    if (response.status === 304) {
      await response.body?.cancel();
      if (!stored) throw new RefreshFailure('304 Not Modified without a stored copy');
      await this.fromStore(() => this.save({ ...stored, ...validators(response, stored), checkedAt: now }));
      logger.debug({ url: this.url }, 'playready: RevInfo not modified');
      return 'not_modified';
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new RefreshFailure(`HTTP ${response.status}`);
    }
    const xml = decodeUtf8(await readCapped(response, MAX_REVINFO_BYTES));
    const check = checkRevInfo(xml);
    if (!check.ok) throw new RefreshFailure(`not a RevInfo document: ${check.reason}`);
    const sha256 = createHash('sha256').update(xml).digest('hex');
    if (stored && stored.sha256 === sha256) {
      // The upstream ignored our validators (or lost them) but the content is the same.
      await this.fromStore(() => this.save({ ...stored, ...validators(response, undefined), checkedAt: now }));
      return 'not_modified';
    }
    await this.fromStore(() => this.save({ xml, sha256, ...validators(response, undefined), fetchedAt: now, checkedAt: now, listIds: check.listIds }));
    logger.info({ listIds: check.listIds.length, bytes: Buffer.byteLength(xml), etag: response.headers.get('etag') ?? undefined }, 'playready: RevInfo updated');
    return 'updated';
  }

  /** A store read or write of the refresh: its failure is a StoreFailure, told apart from a failed download. */
  private async fromStore<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreFailure(err);
    }
  }

  private async save(record: RevInfoRecord): Promise<void> {
    await this.records.set(RECORD_KEY, record);
    this.seenCheckedAt = record.checkedAt;
  }
}

/** The response's ETag / Last-Modified, falling back to the stored ones (a 304 may omit them). */
function validators(response: Response, stored: RevInfoRecord | undefined): Pick<RevInfoRecord, 'etag' | 'lastModified'> {
  const etag = response.headers.get('etag') ?? stored?.etag;
  const lastModified = response.headers.get('last-modified') ?? stored?.lastModified;
  return { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

/** The body, refused (and the download cancelled) once it exceeds `limit` bytes. */
async function readCapped(response: Response, limit: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw new RefreshFailure(`Content-Length ${declared} exceeds ${limit} bytes`);
  }
  if (!response.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    // Leaving the loop by a throw cancels the stream (the iterator's return()).
    if (size > limit) throw new RefreshFailure(`body exceeds ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

function decodeUtf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new RefreshFailure('body is not UTF-8');
  }
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
