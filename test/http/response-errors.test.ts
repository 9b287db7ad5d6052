import test from 'ava';
import { Readable } from 'node:stream';
import { routeTable } from '../../src/http/route-table.js';
import type { LogLine } from '../helpers/with-app.js';
import { withBareApp } from '../helpers/with-app.js';
import { withPassgate } from '../helpers/with-passgate.js';

/**
 * Errors that escape the middleware (Koa's `error` event): a client hanging up is an expected
 * condition, one debug line without a stack; a real response failure stays an error with its stack.
 */

/** Waits (real time, bounded: fails the test instead of hanging) until a log line matches. */
async function lineMatching(lines: LogLine[], match: (line: LogLine) => boolean, what: string): Promise<LogLine> {
  for (let i = 0; i < 200; i++) {
    const found = lines.find(match);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no log line: ${what}`);
}

test('an app closing its sign-in event stream logs a debug line without a stack, never an error', async (t) => {
  const f = await withPassgate(t, { logLevel: 'debug' });
  const registered = await f.register();
  t.is(registered.status, 201);
  const { deviceToken } = (await registered.json()) as { deviceToken: string };
  const auth = { authorization: `Bearer ${deviceToken}` };
  const started = await f.call('/v1/authentication', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mvpd: 'Cablevision' }) });
  t.is(started.status, 201);
  const { code } = (await started.json()) as { code: string };

  for (let round = 0; round < 3; round++) {
    const abort = new AbortController();
    const stream = await f.call(`/v1/authentication/${code}/events`, { headers: auth, signal: abort.signal });
    t.is(stream.status, 200);
    const reader = stream.body!.getReader();
    const first = await reader.read();
    t.regex(Buffer.from(first.value ?? []).toString('utf8'), /pending/);
    abort.abort();
    await reader.cancel().catch(() => undefined);
  }
  const hangups = () => f.log.lines.filter((line) => line.msg === 'client closed the connection');
  await lineMatching(f.log.lines, () => hangups().length === 3, 'three hang-ups');
  for (const line of hangups()) {
    t.is(line.level, 20);
    t.is(line.code, 'ERR_STREAM_PREMATURE_CLOSE');
    t.is(line.err, undefined);
    t.false(JSON.stringify(line).includes('    at '), 'no stack');
  }
  t.deepEqual(f.log.lines.filter((line) => line.level >= 50), [], 'no error lines');
  // The access log still says the stream was cut.
  t.true(f.log.lines.some((line) => line.msg === 'request' && line.route === '/v1/authentication/:code/events' && line.completed === false));
});

test('a response stream that fails on passgate’s side is still an error with its stack', async (t) => {
  const router = routeTable();
  router.get('/broken', (ctx) => {
    let sent = false;
    ctx.type = 'text/plain';
    ctx.body = new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push('partial answer\n');
        } else {
          setImmediate(() => this.destroy(new Error('the source broke')));
        }
      },
    });
  });
  const app = await withBareApp(t, [router]);
  const response = await app.call('/broken');
  t.is(response.status, 200);
  await t.throwsAsync(response.text());
  const line = await lineMatching(app.log.lines, (l) => l.msg === 'response error', 'the response error');
  t.is(line.level, 50);
  const err = line.err as { message: string; stack: string };
  t.is(err.message, 'the source broke');
  t.regex(err.stack, /\n\s+at /);
  t.false(app.log.lines.some((l) => l.msg === 'client closed the connection'));
});
