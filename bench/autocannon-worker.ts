/**
 * The fallback load generator when wrk is missing: autocannon in its own process (started by
 * bench/load.ts on the generator core). Reads a spec file, cycles through its requests, prints
 * the same BENCH_RESULT line as the wrk script (latencies in µs; autocannon's are whole ms).
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

interface Spec {
  url: string;
  connections: number;
  durationSeconds: number;
  requests: Array<{ method: 'GET' | 'POST'; path: string; headers?: Record<string, string>; body?: string }>;
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Spec;
const requests = spec.requests.map((r) => ({ ...r, body: r.body === undefined ? undefined : Buffer.from(r.body, 'base64') }));
let next = 0;

const result = await autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.durationSeconds,
  timeout: 10,
  requests: [
    {
      setupRequest: (request) => {
        const r = requests[next++ % requests.length];
        if (!r) return request;
        return { ...request, method: r.method, path: r.path, headers: r.headers ?? {}, ...(r.body ? { body: r.body } : {}) };
      },
    },
  ],
});

const failed = result.non2xx + result.errors + result.timeouts;
const line = {
  requests: result.requests.total,
  duration_us: Math.round(result.duration * 1e6),
  p50_us: Math.round(result.latency.p50 * 1000),
  p99_us: Math.round(result.latency.p99 * 1000),
  failed,
};
console.log(`BENCH_RESULT ${JSON.stringify(line)}`);
