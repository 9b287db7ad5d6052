import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { isoTime } from '../../src/infra/logger.js';

/**
 * The logger's own stdout (createLogger without a destination): lines are batched and written
 * asynchronously, held as bytes, so every line must come out whole, in order, in UTF-8, and the
 * lines still batched when the process ends must be written then.
 */
const LOGGER = fileURLToPath(new URL('../../src/infra/logger.ts', import.meta.url));
const LINES = 3_000;
const TEXT = 'grüße ✓ 配信 🎬';

/** A child process logging `LINES` lines through createLogger's default destination, then exiting by itself. */
function childLogging(exit: 'natural' | 'process.exit'): Promise<{ stdout: string; code: number | null }> {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const logger = createLogger({ level: 'info' });
    let i = 0;
    // Several batches across event-loop turns, so lines arrive while a write is in flight.
    const step = () => {
      for (let n = 0; n < 100 && i < ${LINES}; n++, i++) logger.info({ i, text: ${JSON.stringify(TEXT)}, pad: 'x'.repeat(i % 300) }, 'line ' + i);
      if (i < ${LINES}) setImmediate(step);
      else if (${JSON.stringify(exit)} === 'process.exit') process.exit(0);
    };
    step();
  `;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(chunks).toString('utf8'), code }));
  });
}

for (const exit of ['natural', 'process.exit'] as const) {
  test(`stdout lines are whole, in order and UTF-8, and none is lost at exit (${exit})`, async (t) => {
    const { stdout, code } = await childLogging(exit);
    t.is(code, 0);
    const lines = stdout.split('\n').filter((line) => line !== '');
    t.is(lines.length, LINES);
    lines.forEach((line, i) => {
      const parsed = JSON.parse(line) as { i: number; text: string; msg: string; pad: string; time: string };
      if (parsed.i !== i || parsed.text !== TEXT || parsed.msg !== `line ${i}` || parsed.pad.length !== i % 300) t.fail(`line ${i} is ${line}`);
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(parsed.time)) t.fail(`line ${i} has time ${parsed.time}`);
    });
  });
}

test("the time field is pino's ISO time of the current millisecond, formatted again when the millisecond changes", async (t) => {
  const first = isoTime();
  const at = Date.parse(JSON.parse(`{${first.slice(1)}}`).time as string);
  t.true(Math.abs(at - Date.now()) <= 1, first);
  t.regex(first, /^,"time":"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"$/);
  const started = Date.now();
  while (Date.now() === started) await new Promise((resolve) => setImmediate(resolve));
  const later = isoTime();
  t.not(later, first);
  t.is(later, `,"time":"${new Date(Date.parse(JSON.parse(`{${later.slice(1)}}`).time as string)).toISOString()}"`);
  t.true(Date.parse(JSON.parse(`{${later.slice(1)}}`).time as string) > at);
});
