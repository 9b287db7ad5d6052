/**
 * Repeated identical log lines, sampled: the first line of a kind is written at once; the ones
 * after it within `intervalMs` are counted, and when the interval ends the last of them is
 * written carrying `suppressed: n` (the identical lines not written since the previous one).
 * While the repetition lasts that is one line per kind per interval; no count is ever lost
 * (finish() writes what is pending, e.g. at shutdown).
 *
 * A 10 s Redis outage under load used to write thousands of identical error lines; with this,
 * a handful per kind.
 */

const MAX_KINDS = 1_000;

/** Writes one line; `suppressed` is 0 for a line written at once. */
export type WriteLine = (suppressed: number) => void;

interface Window {
  end: number;
  /** Lines of this kind held back in this window (the last one is `last`). */
  count: number;
  last?: WriteLine;
}

export interface LogSamplerOptions {
  intervalMs: number;
  /** Milliseconds; tests inject a manual clock. */
  now?: () => number;
  /** Write held-back lines when their interval ends, on a (unref'd) timer; tests call flush() instead. */
  timer?: boolean;
}

export class LogSampler {
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LogSamplerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** One line of `kind`: written now, or held back and counted. */
  offer(kind: string, write: WriteLine): void {
    const now = this.now();
    // Kinds whose repetition ended are dropped here too, so distinct one-off lines never pile up.
    if (this.windows.size > MAX_KINDS) this.flush(now);
    const window = this.windows.get(kind);
    if (window) this.close(kind, window, now);
    const open = this.windows.get(kind);
    if (!open) {
      this.windows.set(kind, { end: now + this.options.intervalMs, count: 0 });
      write(0);
      return;
    }
    open.count++;
    open.last = write;
    this.arm(open.end - now);
  }

  /** Writes the held-back lines whose interval has ended. */
  flush(now = this.now()): void {
    for (const [kind, window] of this.windows) this.close(kind, window, now);
  }

  /** Writes every held-back line now (shutdown). */
  finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [kind, window] of this.windows) this.close(kind, window, Infinity);
  }

  /** Kinds with a window open (tests, and a bound check). */
  get size(): number {
    return this.windows.size;
  }

  private close(kind: string, window: Window, now: number): void {
    if (now < window.end) return;
    const { count, last } = window;
    if (count === 0 || !last) {
      this.windows.delete(kind);
      return;
    }
    // The repetition goes on: the next window starts now, so it stays one line per interval.
    this.windows.set(kind, { end: Number.isFinite(now) ? now + this.options.intervalMs : 0, count: 0 });
    last(count - 1);
  }

  private arm(inMs: number): void {
    if (this.options.timer === false || this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
        const pending = [...this.windows.values()].filter((w) => w.count > 0);
        if (pending.length > 0) this.arm(Math.min(...pending.map((w) => w.end)) - this.now());
      },
      Math.max(0, inMs),
    );
    this.timer.unref();
  }
}
