import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger } from '../../src/infra/logger.js';

/** A logger whose lines the test can read back. */
export function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void raw.push(line) } });
  return { logger, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** Temp directories made by a test file, removed together at the end. */
export function tempDirs(): { make: () => Promise<string>; removeAll: () => Promise<void> } {
  const made: string[] = [];
  return {
    async make() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'passgate-store-'));
      made.push(dir);
      return dir;
    },
    async removeAll() {
      await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}

/** Polls `check` until it returns true; false when `timeoutMs` passes first (no timing assertion). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return check();
}

/** The namespace test/helpers/store-child.ts writes to and reads from. */
export const RESTART_NAMESPACE = 'restart';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = path.join(repoRoot, 'test/helpers/store-child.ts');

/** Runs test/helpers/store-child.ts in a new Node process; resolves its stdout. */
export function runStoreChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import=tsx', childScript, ...args],
      { cwd: repoRoot, timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`store-child ${args[0]} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}
