import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { packageVersion } from './config/package.js';
import type { Config } from './config/schema.js';
import { buildApp } from './http/app.js';
import type { AppState } from './http/context.js';
import { metricsEndpoint } from './http/metrics-endpoint.js';
import { systemClock, type Clock } from './infra/clock.js';
import { createLogger, type Logger } from './infra/logger.js';
import { createMetrics } from './infra/metrics.js';
import { createStore, type Store } from './infra/store.js';

export interface PassgateOverrides {
  logger?: Logger;
  /** An injected store belongs to the caller: close() does not disconnect it. */
  store?: Store;
  clock?: Clock;
}

export interface Passgate {
  /** Where the HTTP API answers, e.g. http://127.0.0.1:8080 (the real port when 0 was asked). */
  url: string;
  /** The metrics endpoint, e.g. http://127.0.0.1:9464/metrics. */
  metricsUrl: string;
  app: Koa<AppState>;
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

/** In-flight requests get this long to finish on shutdown (under Kubernetes' 30 s grace period). */
const drainTimeoutMs = 10_000;

/** The composition root: config → logger → metrics → store → app → listeners. */
export async function startPassgate(config: Config, overrides: PassgateOverrides = {}): Promise<Passgate> {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const version = packageVersion();
  const metrics = createMetrics({ version });
  const clock = overrides.clock ?? systemClock;
  const ownStore = overrides.store === undefined;
  const store =
    overrides.store ??
    (await createStore({ dataDir: config.dataDir, logger: logger.child({ component: 'store' }), ...(config.redisUrl ? { redisUrl: config.redisUrl.reveal() } : {}) }));

  let shuttingDown = false;
  const app = buildApp({ config, logger, metrics, store, clock, version, isShuttingDown: () => shuttingDown });
  const server = createServer(app.callback());
  const metricsServer = createServer(metricsEndpoint(metrics.registry, logger));

  try {
    await listen(server, config.http.port, config.http.host);
    // Same bind address as the API; the port keeps it apart (the Service exposes it as `metrics`).
    await listen(metricsServer, config.metrics.port, config.http.host);
  } catch (error) {
    server.close();
    metricsServer.close();
    if (ownStore) await store.disconnect();
    throw error;
  }

  const url = displayUrl(config.http.host, (server.address() as AddressInfo).port);
  const metricsUrl = `${displayUrl(config.http.host, (metricsServer.address() as AddressInfo).port)}/metrics`;
  logger.info({ url, metricsUrl, store: store.kind, version }, 'passgate started');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      logger.info('shutting down');
      await Promise.all([drain(server, drainTimeoutMs), drain(metricsServer, drainTimeoutMs)]);
      if (ownStore) await store.disconnect();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })();
    return closing;
  };

  return { url, metricsUrl, app, close };
}

/** A URL a person on this machine can use: a wildcard bind is reachable on 127.0.0.1. */
export function displayUrl(host: string, port: number): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const shown = wildcard ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}

/** Stop accepting, let in-flight requests finish, then cut whatever is left after `ms`. */
async function drain(server: Server, ms: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // close() only ends idle keep-alive sockets; busy ones finish their response first.
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), ms);
  try {
    await closed;
  } finally {
    clearTimeout(timer);
  }
}
