/**
 * What the simulated partner adapter has received (SPEC §9), in arrival order. Deliveries are
 * idempotent by job id, per kind: a repeat of a recorded (kind, jobId) only counts `deliveries`,
 * so a test sees at once whether passgate re-sent a call and that the first one is what stays.
 */

export const ADAPTER_RESULTS = ['success', 'denied', 'not_drm', 'corrupt', 'error'] as const;
export type AdapterResult = (typeof ADAPTER_RESULTS)[number];

export interface ReceivedResult {
  kind: 'result';
  jobId: string;
  fileId: string;
  sessionId: string;
  result: AdapterResult;
  message: string;
  /** 1 for the first delivery, +1 for every repeat. */
  deliveries: number;
  /** Time of the first delivery (the simulator's clock). */
  receivedAt: string;
}

export interface ReceivedDecrypted {
  kind: 'decrypted';
  jobId: string;
  fileId: string;
  /** The file part's filename (Content-Disposition), as sent. */
  filename: string;
  /** Hex SHA-256 of the file part's bytes. */
  sha256: string;
  size: number;
  deliveries: number;
  receivedAt: string;
}

export type Received = ReceivedResult | ReceivedDecrypted;
/** A record as a call delivers it (each kind's fields, before counting). */
export type Delivery = Uncounted<Received>;
type Uncounted<R> = R extends Received ? Omit<R, 'deliveries' | 'receivedAt'> : never;

/** Bounded like the request log, so a long-running local simulator does not grow without limit. */
const MAX_RECORDS = 10_000;

export class AdapterInbox {
  private records: Received[] = [];
  private readonly byKey = new Map<string, Received>();

  /** Records the first delivery of (kind, jobId), or counts a repeat; the record as it now stands. */
  deliver(delivery: Delivery, now: number): Received {
    const key = `${delivery.kind}\u0000${delivery.jobId}`;
    const seen = this.byKey.get(key);
    if (seen) {
      seen.deliveries += 1;
      return seen;
    }
    const record: Received = { ...delivery, deliveries: 1, receivedAt: new Date(now).toISOString() };
    this.records.push(record);
    this.byKey.set(key, record);
    if (this.records.length > MAX_RECORDS) {
      for (const dropped of this.records.splice(0, this.records.length - MAX_RECORDS)) this.byKey.delete(`${dropped.kind}\u0000${dropped.jobId}`);
    }
    return record;
  }

  list(): readonly Received[] {
    return this.records;
  }

  clear(): void {
    this.records = [];
    this.byKey.clear();
  }
}
