/**
 * Medians over the interleaved reps, the table, and docs/performance.md (generated, committed).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { LoadResult } from './load.js';

export const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** One line of the table: a server or a scenario, measured once per rep. */
export interface Row {
  label: string;
  samples: LoadResult[];
  /** Per rep: this row's req/s over the same rep's bare node:http and Koa floor req/s. */
  ratioBare: number[];
  ratioKoa: number[];
}

export interface PassThrough {
  /** Which passgate: the store it runs on. */
  store: string;
  connections: number;
  direct: LoadResult[];
  viaPassgate: LoadResult[];
  /** Per rep: passgate's p50 minus the direct call's p50, ms. */
  addedP50: number[];
}

export interface MemoryRow {
  store: string;
  devices: number;
  permits: number;
  seedSeconds: number;
  rssBefore: number;
  rssAfter: number;
  peakRss: number;
  heapBefore?: number;
  heapAfter?: number;
  storeBytes: number;
  storeFiles: string;
  redisUsedMemory?: number;
  /** The gate on the loaded store: one device (as in the main table) and rotating over every permitted device. */
  gate: Row[];
}

export interface Report {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  generator: string;
  settings: string;
  pinning: string;
  reps: number;
  rows: Row[];
  passThrough: PassThrough[];
  memory?: MemoryRow;
  notes: string[];
}

export function machine(): { cpu: string; cores: number } {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: os.cpus() it is.
  }
  return { cpu, cores: cpus().length };
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '–');
export const mib = (bytes: number | undefined) => (bytes !== undefined && Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : '–');

function rowLine(row: Row): string {
  const failed = row.samples.reduce((sum, s) => sum + s.failed, 0);
  const cells = [
    row.label + (failed > 0 ? ` (**${failed} failed**)` : ''),
    int(median(row.samples.map((s) => s.perSecond))),
    fixed(median(row.ratioBare), 2),
    fixed(median(row.ratioKoa), 2),
    `${ms(median(row.samples.map((s) => s.p50Ms)))} / ${ms(median(row.samples.map((s) => s.p99Ms)))}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

const TABLE_HEAD = '| server / scenario | req/s | ratio to bare | ratio to Koa floor | p50 / p99 ms |\n| --- | ---: | ---: | ---: | ---: |';

export function table(rows: Row[]): string {
  return [TABLE_HEAD, ...rows.map(rowLine)].join('\n');
}

export function passThroughTable(items: PassThrough[]): string {
  const lines = [
    '| passgate on | connections | direct to the simulator p50 / p99 ms | through passgate p50 / p99 ms | passgate adds (p50) | req/s direct / via passgate |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const p of items) {
    const d = (f: (r: LoadResult) => number) => median(p.direct.map(f));
    const v = (f: (r: LoadResult) => number) => median(p.viaPassgate.map(f));
    const failed = [...p.direct, ...p.viaPassgate].reduce((sum, s) => sum + s.failed, 0);
    lines.push(
      `| ${p.store} | c=${p.connections}${failed > 0 ? ` (**${failed} failed**)` : ''} | ${ms(d((r) => r.p50Ms))} / ${ms(d((r) => r.p99Ms))} | ${ms(v((r) => r.p50Ms))} / ${ms(v((r) => r.p99Ms))} | **${fixed(median(p.addedP50), 2)} ms** | ${int(d((r) => r.perSecond))} / ${int(v((r) => r.perSecond))} |`,
    );
  }
  return lines.join('\n');
}

export function memoryTable(m: MemoryRow): string {
  return [
    '| store | devices | live Permits | seeding | passgate RSS before → after (peak) | V8 heap used before → after | store size |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${m.store} | ${int(m.devices)} | ${int(m.permits)} | ${int(m.seedSeconds)} s | ${mib(m.rssBefore)} → ${mib(m.rssAfter)} (${mib(m.peakRss)}) | ${mib(m.heapBefore)} → ${mib(m.heapAfter)} | ${mib(m.storeBytes)}${m.redisUsedMemory !== undefined ? ` (Redis used_memory ${mib(m.redisUsedMemory)})` : ''} |`,
  ].join('\n');
}

/** The printed summary (stdout). */
export function summary(report: Report): string {
  const parts = [
    `\npassgate bench — ${report.date}, Node ${report.node}, ${report.cpu} × ${report.cores}; ${report.generator}, ${report.settings}; ${report.pinning}\n`,
    table(report.rows),
    `\n/v1/authorize pass-through (medians of ${report.reps} reps):\n`,
    passThroughTable(report.passThrough),
  ];
  if (report.memory) {
    parts.push(`\nmemory and store size (files: ${report.memory.storeFiles}):\n`, memoryTable(report.memory), '\ngate on the loaded store:\n', table(report.memory.gate));
  }
  if (report.notes.length > 0) parts.push('', ...report.notes.map((n) => `note: ${n}`));
  return parts.join('\n');
}

/** docs/performance.md. */
export function markdown(report: Report): string {
  const m = report.memory;
  return `# Performance

Generated by \`npm run bench\` (bench/run.ts) on ${report.date}; do not edit by hand — run it again.

- Machine: ${report.cpu}, ${report.cores} cores; Node ${report.node}.
- Load: ${report.generator}, ${report.settings}.
- Pinning: ${report.pinning}.
- ${report.reps} interleaved reps; every figure is the median over the reps (ratios: the median of the per-rep ratios).

## Throughput and latency at 50 connections

${table(report.rows)}

## \`/v1/authorize\` pass-through

What passgate adds to the upstream's \`decisions/authorize\`: the same request (resource REF30, MVPD
Cablevision, signed-in devices rotated so no two in-flight requests share one upstream call) sent
straight to the simulator, and as \`POST /v1/authorize\` through passgate, with the same generator.

${passThroughTable(report.passThrough)}
${
  m
    ? `
## Bounded memory: ${int(m.devices)} devices, ${int(m.permits)} live Permits

${memoryTable(m)}

Store size is every file in the data directory (${m.storeFiles}). RSS is the passgate process's
VmRSS (\`/proc/<pid>/status\`) right after start, and after the seeding; peak is VmHWM; the heap is
\`nodejs_heap_size_used_bytes\` from the ops \`/metrics\`. Then the gate again on that store, beside
the floors of the same reps:

${table(m.gate)}
`
    : ''
}
## How it was measured

Every server runs in its own process: bare \`node:http\` answering a fixed 60-byte JSON, the Koa
floor (koa + @koa/router + @koa/bodyparser, one POST route answering the same 60 bytes; both sent
the same request as the license-token row), and passgate started as users start it (\`node
dist/cli.js serve\` with \`NODE_ENV=production\`, the Docker image's way; dist/ is built from the
current src first), log level \`info\` with its output going to a file, its upstream simulator
(\`passgate sim\`), the license-server stub (a tiny \`node:http\` process answering 1 KB of license
bytes at once) and, for the Redis rows, \`redis-server --save '' --appendonly no\`, each in a
process of its own. The load comes from another process: ${report.generator} with one thread.
Each rep runs the bare server, the Koa floor and every scenario one after the other, each after an
unrecorded warm-up run; the ratios are taken within a rep, so drift between reps cancels. Devices
are set up over HTTP as an app would (\`POST /v1/devices\`, sign-in through the simulator's MVPD
login page, one \`POST /v1/authorize\` to cache the Permit); the renewal row sends the device's
\`deviceSecret\` (SPEC §2), rotating over several devices. Rate limits that would stop a single
client address (device registrations, the upstream throttle mirror) are raised in the bench's
config file, the simulator's throttle is off, and nothing in src/ is changed for the bench.
${report.notes.length > 0 ? `\nNotes:\n\n${report.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}
