import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { isoTime } from '../../src/infra/logger.js';

/**
 * The logger's own stdout (createLogger without a destination): lines are batched, held as bytes
 * and written asynchronously, to a pipe (a container runtime) or a file. Every line must come out
 * whole, in order, in UTF-8, and the lines still batched when the process ends must be written then
 * (pino's exit flush). Not covered, by design of async writes: process.exit() while a batch is being
 * written (that batch is not written twice, and may be lost) — passgate's shutdown flushes first.
 */
const LOGGER = fileURLToPath(new URL('../../src/infra/logger.ts', import.meta.url));
const LINES = 3_000;
const TEXT = 'grüße ✓ 配信 🎬';

/** A child process logging `LINES` lines through createLogger's default destination, then exiting by itself. */
function childLogging(stdout: 'pipe' | number): Promise<{ stdout: string; code: number | null }> {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const logger = createLogger({ level: 'info' });
    let i = 0;
    // Several batches across event-loop turns, so lines arrive while a write is in flight.
    const step = () => {
      for (let n = 0; n < 100 && i < ${LINES}; n++, i++) logger.info({ i, text: ${JSON.stringify(TEXT)}, pad: 'x'.repeat(i % 300) }, 'line ' + i);
      if (i < ${LINES}) setImmediate(step);
    };
    step();
  `;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { stdio: ['ignore', stdout, 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(chunks).toString('utf8'), code }));
  });
}

function checkLines(t: ExecutionContext, stdout: string): void {
  const lines = stdout.split('\n').filter((line) => line !== '');
  t.is(lines.length, LINES);
  lines.forEach((line, i) => {
    const parsed = JSON.parse(line) as { i: number; text: string; msg: string; pad: string; time: string };
    if (parsed.i !== i || parsed.text !== TEXT || parsed.msg !== `line ${i}` || parsed.pad.length !== i % 300) t.fail(`line ${i} is ${line}`);
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(parsed.time)) t.fail(`line ${i} has time ${parsed.time}`);
  });
}

test('stdout a pipe: lines are whole, in order and UTF-8, and none is lost when the process ends', async (t) => {
  const { stdout, code } = await childLogging('pipe');
  t.is(code, 0);
  checkLines(t, stdout);
});

test('stdout a file: lines are whole, in order and UTF-8, and none is lost when the process ends', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.log');
  const fd = openSync(file, 'w');
  try {
    const { code } = await childLogging(fd);
    t.is(code, 0);
  } finally {
    closeSync(fd);
  }
  checkLines(t, readFileSync(file, 'utf8'));
});

test("the time field is pino's ISO time of the current millisecond, formatted again when the millisecond changes", async (t) => {
  const timeOf = (stamp: string) => Date.parse((JSON.parse(`{${stamp.slice(1)}}`) as { time: string }).time);
  const before = Date.now();
  const first = isoTime();
  const after = Date.now();
  t.regex(first, /^,"time":"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"$/);
  // The millisecond of the call itself, never a stamp cached from an earlier one.
  t.true(timeOf(first) >= before && timeOf(first) <= after, `${first} outside ${before}..${after}`);
  const started = Date.now();
  while (Date.now() === started) await new Promise((resolve) => setImmediate(resolve));
  const later = isoTime();
  t.not(later, first);
  t.is(later, `,"time":"${new Date(timeOf(later)).toISOString()}"`);
  t.true(timeOf(later) > timeOf(first));
});
