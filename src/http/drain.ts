import type { Server, ServerResponse } from 'node:http';

/**
 * Graceful stop of one HTTP listener. Attach it before the server handles requests; `stop()`
 * stops accepting connections and closes idle keep-alive ones, and from then on every answer
 * that has not started yet carries `Connection: close`, so a client never reuses a socket we are
 * about to close (the race that turns a keep-alive request into ECONNRESET). `finish(ms)` waits
 * for the requests in flight, and after `ms` cuts whatever is left.
 */
export class HttpDrain {
  private readonly inFlight = new Set<ServerResponse>();
  private stopping = false;
  private closed: Promise<void> = Promise.resolve();

  constructor(private readonly server: Server) {
    // Before the app's own listener, so even an answer written at once carries the header.
    server.prependListener('request', (_req, res: ServerResponse) => {
      if (this.stopping) res.setHeader('Connection', 'close');
      this.inFlight.add(res);
      res.once('close', () => this.inFlight.delete(res));
    });
  }

  /** Requests whose answer has not ended yet. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Stop accepting; answers not yet started close their connection. Idempotent. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    // 'close' comes once the last connection is gone.
    if (this.server.listening) this.closed = new Promise((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
  }

  /** Resolves once every connection is gone: the requests in flight finished, or were cut after `ms`. */
  async finish(ms: number): Promise<void> {
    this.stop();
    // A keep-alive socket becomes idle when its last answer ends; close it then rather than at its timeout.
    const sweep = setInterval(() => this.server.closeIdleConnections(), 100);
    const cut = setTimeout(() => this.server.closeAllConnections(), ms);
    try {
      await this.closed;
    } finally {
      clearInterval(sweep);
      clearTimeout(cut);
    }
  }
}
