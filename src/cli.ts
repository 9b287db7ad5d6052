#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, describeConfig, loadConfig } from './config/load.js';
import { packageVersion } from './config/package.js';
import { createLogger, type Logger } from './infra/logger.js';
import { StoreUnavailableError } from './infra/store.js';
import { displayUrl, startPassgate } from './main.js';
import type { RunningSim } from './sim/server.js';

const usage = `passgate — TV Everywhere programmer service (Adobe Pass REST API V2 + DRM license gate)

Usage:
  passgate serve [--with-sim] [--sim-port N]   run the service (HTTP API + /metrics port)
  passgate sim [--port N] [--host H]           run the upstream simulator alone (default 127.0.0.1:8081)
  passgate config check                        validate the configuration and print it, secrets masked
  passgate --help | -h                         this text
  passgate --version                           the version

serve --with-sim starts the simulator first (on --sim-port, default 8081; 0 picks a free port)
and points every upstream at it: the one-command local setup (npm start).

Environment (serve, config check):
  PASSGATE_PORT          HTTP port (default 8080)
  PASSGATE_HOST          bind address (default 0.0.0.0)
  PASSGATE_METRICS_PORT  Prometheus /metrics port (default 9464)
  PASSGATE_DATA_DIR      embedded store directory (default ./data)
  PASSGATE_LOG_LEVEL     fatal|error|warn|info|debug|trace|silent (default info)
  PASSGATE_CONFIG        YAML file: service provider, upstreams, apps (default: bundled config/example.yaml)
  REDIS_URL              redis[s]://… shared store for many replicas (absent: embedded store)
  PASS_BASE_URL, DRM_BASE_URL, ADAPTER_BASE_URL   override the file's upstream base URLs
`;

/** A command line we do not understand: usage on stderr, exit 2. */
class UsageError extends Error {}

type Outcome = number | 'running';

async function run(argv: string[]): Promise<Outcome> {
  const [command, ...rest] = argv;
  switch (command) {
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return 0;
    case '--version':
      console.log(packageVersion());
      return 0;
    case 'serve':
      return serve(rest);
    case 'sim':
      return sim(rest);
    case 'config':
      return configCommand(rest);
    case undefined:
      throw new UsageError('a command is required');
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function serve(args: string[]): Promise<Outcome> {
  const { values } = parse(args, { 'with-sim': { type: 'boolean' }, 'sim-port': { type: 'string' } });
  if (values.help) return help();
  if (!values['with-sim'] && values['sim-port'] !== undefined) throw new UsageError('--sim-port needs --with-sim');
  const simPort = portOption(values['sim-port'], '--sim-port', 8081);
  // Validate before anything starts (with --with-sim the upstreams will be the simulator).
  let config = loadConfig(values['with-sim'] ? upstreamsAt(`http://127.0.0.1:${simPort || 8081}`) : process.env);
  const logger = createLogger({ level: config.logLevel });

  let simulator: RunningSim | undefined;
  if (values['with-sim']) {
    simulator = await startSimulator({ port: simPort, host: '127.0.0.1', logger: logger.child({ component: 'sim' }) });
    config = loadConfig(upstreamsAt(simulator.url));
    console.log(`passgate-sim listening on ${simulator.url}`);
  }

  const passgate = await startPassgate(config, { logger }).catch(async (error: unknown) => {
    await simulator?.close();
    throw error;
  });
  console.log(`passgate listening on ${passgate.url}`);
  console.log(`passgate metrics on ${passgate.metricsUrl}`);
  if (simulator) printHints(passgate.url, passgate.metricsUrl, simulator.url);
  onShutdownSignal(async () => {
    await passgate.close();
    await simulator?.close();
  });
  return 'running';
}

/** The environment with every upstream pointed at one simulator. */
function upstreamsAt(url: string): NodeJS.ProcessEnv {
  return { ...process.env, PASS_BASE_URL: url, DRM_BASE_URL: url, ADAPTER_BASE_URL: url };
}

/** What to try next, for the one-command local setup (npm start). */
function printHints(url: string, metricsUrl: string, simUrl: string): void {
  const hints = [
    [`curl ${url}/livez`, 'liveness'],
    [`curl ${url}/readyz`, 'readiness (store reachable)'],
    [`curl ${metricsUrl}`, 'Prometheus metrics'],
    [`curl ${simUrl}/sim/log`, 'every upstream call the simulator received'],
  ] as const;
  const width = Math.max(...hints.map(([command]) => command.length));
  console.log(['', 'Try:', ...hints.map(([command, what]) => `  ${command.padEnd(width)}  # ${what}`), 'Ctrl-C stops both.'].join('\n'));
}

async function sim(args: string[]): Promise<Outcome> {
  const { values } = parse(args, { port: { type: 'string' }, host: { type: 'string' } });
  if (values.help) return help();
  const host = values.host ?? '127.0.0.1';
  const logger = createLogger({ name: 'passgate-sim' });
  const simulator = await startSimulator({ port: portOption(values.port, '--port', 8081), host, logger });
  console.log(`passgate-sim listening on ${displayUrl(host, Number(new URL(simulator.url).port))}`);
  onShutdownSignal(() => simulator.close());
  return 'running';
}

function configCommand(args: string[]): Outcome {
  const { values, positionals } = parse(args, {}, true);
  if (values.help) return help();
  if (positionals.length !== 1 || positionals[0] !== 'check') throw new UsageError('usage: passgate config check');
  console.log(JSON.stringify(describeConfig(loadConfig(process.env)), null, 2));
  return 0;
}

/** Loaded on demand: the simulator is a separate building that only these commands enter. */
async function startSimulator(opts: { port: number; host: string; logger: Logger }): Promise<RunningSim> {
  const { startSim } = await import('./sim/server.js');
  return startSim(opts);
}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

function parse<O extends Options>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function help(): Outcome {
  process.stdout.write(usage);
  return 0;
}

function portOption(value: string | boolean | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d{1,5}$/.test(value) || port > 65535) {
    throw new UsageError(`${flag} expects a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return port;
}

/** SIGTERM (Kubernetes) or SIGINT (Ctrl-C): drain and exit 0; a second signal exits at once. */
function onShutdownSignal(close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`passgate: shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  const outcome = await run(process.argv.slice(2));
  if (outcome !== 'running') process.exitCode = outcome;
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`passgate: ${error.message}\n\n${usage}`);
    process.exitCode = 2;
  } else if (error instanceof ConfigError) {
    console.error(error.message);
    process.exitCode = 2;
  } else if (error instanceof StoreUnavailableError) {
    console.error(`passgate: ${error.message}`);
    process.exitCode = 1;
  } else {
    // Start-up failures (a port in use, …): one readable line, no stack trace.
    console.error(`passgate: ${(error as Error).message ?? String(error)}`);
    process.exitCode = 1;
  }
}
