/**
 * The load generator, out of process: wrk (a Lua script rotating through a list of requests)
 * when installed, else autocannon in a child process (bench/autocannon-worker.ts). Both run on
 * the generator core and report requests, duration, p50/p99 and failed requests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORES, hasTaskset } from './processes.js';

/** One request of a scenario; the generator cycles through the list (one per device, say). */
export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface LoadSpec {
  /** Origin, e.g. http://127.0.0.1:8080. */
  url: string;
  requests: LoadRequest[];
  connections: number;
  durationSeconds: number;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers that were not 2xx/3xx, plus socket errors and timeouts. */
  failed: number;
}

export type Generator = 'wrk' | 'autocannon';

export function pickGenerator(): Generator {
  const wanted = process.env.BENCH_LOAD;
  if (wanted === 'autocannon') return 'autocannon';
  const wrk = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (wrk.error === undefined) return 'wrk';
  if (wanted === 'wrk') throw new Error('bench: BENCH_LOAD=wrk but wrk is not installed (apt-get install wrk)');
  return 'autocannon';
}

/** "wrk 4.1.0 …" or "autocannon v8.0.0". */
export function generatorVersion(generator: Generator): string {
  if (generator === 'wrk') {
    const out = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
    return (`${out.stdout}${out.stderr}`.split('\n')[0] ?? 'wrk').replace(/\s+Copyright.*$/, '').trim();
  }
  const out = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'node_modules', 'autocannon', 'autocannon.js'), '--version'], { encoding: 'utf8' });
  return `autocannon ${(out.stdout.split('\n')[0] ?? '').trim()}`;
}

const luaString = (value: string | Buffer) => {
  // Three-digit decimal escapes keep any byte (quotes, newlines, binary) intact in a Lua string literal.
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '"';
  for (const byte of bytes) out += byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  return `${out}"`;
};

/**
 * A wrk script: the requests are formatted once in init(), request() cycles through them, and
 * done() prints one JSON line the bench parses (latencies in µs).
 */
function wrkScript(spec: LoadSpec): string {
  const host = new URL(spec.url).host;
  const lines = spec.requests.map((r) => {
    const headers = Object.entries({ host, ...r.headers })
      .map(([k, v]) => `[${luaString(k)}]=${luaString(v)}`)
      .join(', ');
    return `  reqs[#reqs + 1] = wrk.format(${luaString(r.method)}, ${luaString(r.path)}, {${headers}}, ${r.body === undefined ? 'nil' : luaString(r.body)})`;
  });
  return `local reqs = {}
local i = 0
function init(args)
${lines.join('\n')}
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"failed":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`;
}

function run(command: string, args: string[]): Promise<string> {
  const [file, argv] = hasTaskset ? ['taskset', ['-c', String(CORES.generator), command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    child.on('error', reject);
    // A Lua error in the wrk script goes to stderr with exit 0: kept with stdout for the parser's message.
    child.on('exit', (code) => (code === 0 ? resolve(`${out}${err}`) : reject(new Error(`bench: ${command} exited ${code}: ${err || out}`))));
  });
}

function parseResult(output: string, generator: Generator): LoadResult {
  const line = output.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`bench: no result line in the ${generator} output:\n${output}`);
  const r = JSON.parse(line.slice('BENCH_RESULT '.length)) as { requests: number; duration_us: number; p50_us: number; p99_us: number; failed: number };
  const seconds = r.duration_us / 1e6;
  return { requests: r.requests, seconds, perSecond: r.requests / seconds, p50Ms: r.p50_us / 1000, p99Ms: r.p99_us / 1000, failed: r.failed };
}

/** One run of the load generator against `spec`; `workDir` holds its script. */
export async function runLoad(generator: Generator, spec: LoadSpec, workDir: string): Promise<LoadResult> {
  if (spec.requests.length === 0) throw new Error('bench: a load spec needs at least one request');
  if (generator === 'wrk') {
    const script = join(workDir, 'load.lua');
    writeFileSync(script, wrkScript(spec));
    const out = await run('wrk', ['-t1', `-c${spec.connections}`, `-d${spec.durationSeconds}s`, '--timeout', '10s', '-s', script, spec.url]);
    return parseResult(out, generator);
  }
  const file = join(workDir, 'load.json');
  const requests = spec.requests.map((r) => ({
    ...r,
    body: r.body === undefined ? undefined : Buffer.from(r.body).toString('base64'),
  }));
  writeFileSync(file, JSON.stringify({ url: spec.url, connections: spec.connections, durationSeconds: spec.durationSeconds, requests }));
  const out = await run(process.execPath, ['--import=tsx', join(import.meta.dirname, 'autocannon-worker.ts'), file]);
  return parseResult(out, generator);
}
