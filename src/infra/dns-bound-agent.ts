import type agentkeepalive from 'agentkeepalive';
import type { ClientRequest, ClientRequestArgs } from 'node:http';
import type { LookupFunction, Socket } from 'node:net';
import type { OnAnswer } from './dns.js';

export type KeepAliveAgent = agentkeepalive.HttpAgent | agentkeepalive.HttpsAgent;

/** What ties an agent's sockets to DNS answers (see UpstreamDns.connectionLookup). */
export interface SocketLifetime {
  /** A lookup for one new connection that reports when its answer ends; undefined: no answer bounds it. */
  connectionLookup(onAnswer: OnAnswer): LookupFunction | undefined;
  /** One socket closed because the answer it was opened on ended. */
  onRetired(): void;
}

const answerEnds = Symbol('passgate.answerEnds');
const connectOptions = Symbol('passgate.connectOptions');
const retirement = Symbol('passgate.retirement');

interface AnsweredSocket extends Socket {
  /** Epoch ms after which the socket carries no new request; absent until its lookup answered. */
  [answerEnds]?: number;
  /** The options it was created with: the agent's removeSocket finds its pool by them. */
  [connectOptions]?: ClientRequestArgs;
  /** Closes it while idle in the pool when its answer ends before the pool's idle timeout would. */
  [retirement]?: NodeJS.Timeout;
}

/** Node's Agent methods that its types leave out (lib/_http_agent.js; agentkeepalive calls them too). */
interface AgentInternals {
  addRequest(req: ClientRequest, options: ClientRequestArgs): void;
  removeSocket(socket: Socket, options: ClientRequestArgs): void;
  freeSockets: Record<string, AnsweredSocket[] | undefined>;
  options: { freeSocketTimeout?: number };
}

/**
 * Makes `agent` retire each socket when the DNS answer it was opened on ends (issue 14): DNS is
 * only consulted for new sockets, so a socket opened just before its answer's capped TTL ends
 * would otherwise carry the old address for a whole socket lifetime more. A socket whose answer
 * has ended
 * - is closed when its request finishes (the request in flight is never cut: it ends normally),
 *   instead of going back to the pool or to a queued request;
 * - is closed while idle in the pool at the instant its answer ends;
 * - is never handed out of the pool, even when that timer has not fired yet (a busy event loop).
 * So a DNS change reaches every request that starts after the cached answer ends, bursts included.
 */
export function retireSocketsWithTheirAnswer<A extends KeepAliveAgent>(agent: A, lifetime: SocketLifetime): A {
  const internals = agent as unknown as AgentInternals;
  const createConnection = agent.createConnection.bind(agent);
  const keepSocketAlive = agent.keepSocketAlive.bind(agent);
  const reuseSocket = agent.reuseSocket.bind(agent);
  const addRequest = internals.addRequest.bind(agent);

  const ended = (socket: AnsweredSocket, now: number) => socket[answerEnds] !== undefined && socket[answerEnds] <= now;
  const retire = (socket: AnsweredSocket, pooled: boolean) => {
    clearTimeout(socket[retirement]);
    if (socket.destroyed) return;
    socket.destroy();
    // As agentkeepalive does for an idle timeout: out of the pool now, not at 'close'.
    if (pooled) internals.removeSocket(socket, socket[connectOptions] ?? {});
    lifetime.onRetired();
  };

  agent.createConnection = (options, callback) => {
    // The lookup answers after connect() returns (both resolvers call back asynchronously).
    const opened: { socket?: AnsweredSocket } = {};
    const lookup = lifetime.connectionLookup((validUntil) => {
      if (opened.socket) opened.socket[answerEnds] = validUntil;
    });
    const socket = createConnection(lookup ? { ...options, lookup } : options, callback) as AnsweredSocket;
    socket[connectOptions] = options as ClientRequestArgs;
    opened.socket = socket;
    return socket;
  };

  // Before the agent's own 'free' handler: it hands the socket to a queued request or pools it;
  // a destroyed socket it only destroys (a queued request then gets a new socket at 'close').
  agent.prependListener('free', (socket: AnsweredSocket) => {
    if (ended(socket, Date.now())) retire(socket, false);
  });

  agent.keepSocketAlive = (socket: AnsweredSocket) => {
    // Node's returns whether the socket may be pooled (its types say void).
    if (!(keepSocketAlive(socket) as unknown as boolean)) return false;
    const left = (socket[answerEnds] ?? Infinity) - Date.now();
    // A longer wait needs no timer: the pool's idle timeout closes the socket first, or a request takes it.
    if (left <= (internals.options.freeSocketTimeout ?? Infinity)) {
      socket[retirement] = setTimeout(() => retire(socket, true), Math.max(0, left)).unref();
    }
    return true;
  };

  agent.reuseSocket = (socket: AnsweredSocket, req) => {
    clearTimeout(socket[retirement]);
    reuseSocket(socket, req);
  };

  internals.addRequest = (req, options) => {
    const now = Date.now();
    for (const name in internals.freeSockets) {
      const pool = internals.freeSockets[name];
      // Copied only when one must go: retiring removes it from the pool.
      if (pool?.some((socket) => ended(socket, now))) for (const socket of [...pool]) if (ended(socket, now)) retire(socket, true);
    }
    addRequest(req, options);
  };

  return agent;
}
