import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadConfig, localInstanceEnv } from '../config/load.js';
import { bundledConfigFile } from '../config/package.js';
import { createLogger } from '../infra/logger.js';
import { startPassgate, type Passgate } from '../main.js';
import type { RunningSim } from '../sim/server.js';
import { envelopeKey } from '../config/agent.js';
import type { Config } from '../config/schema.js';
import { playDemo, type DemoStep, type DemoTarget } from './script.js';

export interface DemoOptions {
  /** One JSON document at the end instead of the readable steps. */
  json?: boolean;
  /** Where the output goes (the CLI passes stdout). */
  write: (text: string) => void;
}

export interface DemoReport {
  ok: boolean;
  passgateUrl: string;
  simUrl: string;
  steps: DemoStep[];
  /** The step that did not behave as expected. */
  failed?: { step: number; title: string; error: string };
  ms: number;
}

/** The fastest poll interval the configuration allows (SPEC §2: the upstream asks for 3–5 s). */
const DEMO_POLL_INTERVAL_MS = 3_000;

/**
 * `passgate demo` (SPEC §11): the simulator and passgate on free ports, the embedded store in a
 * temp dir (removed afterwards), quiet logs; then a scripted streaming app and viewer over HTTP
 * only. Both servers stop in every case. Resolves to the exit status: 0 when every step behaved
 * as expected, 1 otherwise.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const started = performance.now();
  const { write } = options;
  const dir = await mkdtemp(join(tmpdir(), 'passgate-demo-'));
  const quiet = createLogger({ level: 'silent' });
  let sim: RunningSim | undefined;
  let passgate: Passgate | undefined;
  let report: DemoReport;
  try {
    const { startSim } = await import('../sim/server.js');
    sim = await startSim({ port: 0, host: '127.0.0.1', logger: quiet });
    const configFile = await demoConfigFile(dir);
    const dataDir = join(dir, 'data');
    await mkdir(dataDir);
    const config = loadConfig({ ...localInstanceEnv({ simUrl: sim.url, dataDir, configFile }), PASSGATE_LOG_LEVEL: 'silent' });
    passgate = await startPassgate(config, { logger: quiet });

    if (!options.json) {
      write(
        [
          'passgate demo — a scripted streaming app (the TV) and viewer (the phone), over HTTP only',
          `  simulator (Adobe Pass, MVPD, DRM license service)  ${sim.url}`,
          `  passgate                                          ${passgate.url}`,
          `  store                                             embedded, in ${dataDir} (removed afterwards)`,
          '  The simulator throttles each device IP like Adobe Pass (1 call/s after a burst of 10);',
          '  passgate paces its upstream calls to match, so the later steps take about a second each.',
          '',
          '',
        ].join('\n'),
      );
    }
    const steps = await playDemo({ passgateUrl: passgate.url, simUrl: sim.url, ...agentTarget(config) }, (step) => {
      if (!options.json) write(formatStep(step));
    });
    const failed = steps.find((s) => !s.ok);
    report = {
      ok: failed === undefined,
      passgateUrl: passgate.url,
      simUrl: sim.url,
      steps,
      ...(failed ? { failed: { step: failed.n, title: failed.title, error: failed.error ?? '' } } : {}),
      ms: 0,
    };
  } catch (error) {
    // The servers did not start (or the script itself broke): still a named failure, exit 1.
    const message = (error as Error).message ?? String(error);
    report = { ok: false, passgateUrl: passgate?.url ?? '', simUrl: sim?.url ?? '', steps: [], failed: { step: 0, title: 'start the simulator and passgate', error: message }, ms: 0 };
  } finally {
    await passgate?.close().catch(() => {});
    await sim?.close().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
  report.ms = Math.round(performance.now() - started);
  if (options.json) {
    write(`${JSON.stringify(report, null, 2)}\n`);
  } else if (report.failed) {
    write(`\nDemo FAILED at step ${report.failed.step} (${report.failed.title}): ${report.failed.error}\nBoth servers stopped.\n`);
  } else {
    write(`\nAll ${report.steps.length} steps behaved as expected in ${(report.ms / 1000).toFixed(1)} s. Both servers stopped.\n`);
    write('Run it yourself: npx passgate serve --with-sim (README: API reference).\n');
  }
  return report.ok ? 0 : 1;
}

/** config/example.yaml (the demo fixtures) with the fastest allowed sign-in poll interval. */
async function demoConfigFile(dir: string): Promise<string> {
  const file = parseYaml(await readFile(bundledConfigFile, 'utf8')) as Record<string, unknown>;
  const signin = (typeof file.signin === 'object' && file.signin !== null ? file.signin : {}) as Record<string, unknown>;
  file.signin = { ...signin, poll_interval_ms: DEMO_POLL_INTERVAL_MS };
  const path = join(dir, 'passgate.yaml');
  await writeFile(path, stringifyYaml(file), { mode: 0o600 });
  return path;
}

const actorLabel = { app: 'TV app', viewer: 'phone', operator: 'CLI', partner: 'partner' } as const;

/** The agent steps' credentials from config/example.yaml's `agent` section (SPEC §10 agent demo fixtures). */
function agentTarget(config: Config): Pick<DemoTarget, 'agent'> {
  const agent = config.agent;
  const [partner, key] = [agent?.partners[0], agent?.keys[0]];
  if (!agent || !partner || !key) return {};
  return { agent: { partnerSecret: partner.secret.reveal(), keyId: key.id, key: envelopeKey(key.secret), principal: 'alice@corp.example', outsider: 'mallory@partner.example', label: 'internal' } };
}

/** One numbered step, its exchange and key fields, aligned. */
export function formatStep(step: DemoStep): string {
  const head = `${String(step.n).padStart(2)}. ${actorLabel[step.actor].padEnd(7)} │ ${step.title}`;
  if (!step.ok) return `${head}\n    ✗ ${step.error ?? 'failed'}\n`;
  const width = Math.max(0, ...step.details.map(([key]) => key.length));
  const lines = [`${head}  (${step.ms} ms)`, `    ${step.request}`, ...step.details.map(([key, value]) => `      ${key.padEnd(width)}  ${value}`)];
  return `${lines.join('\n')}\n`;
}
