/**
 * Child processes of the bench: spawned pinned to a core (taskset when present), output to a log
 * file, every one killed when the bench exits — normally, on Ctrl-C / SIGTERM or on an exception.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

/** Where each kind of process runs: servers under test alone on core 0, the rest on core 1. */
export const CORES = { server: 0, helper: 1, generator: 1 } as const;

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  logFile: string;
}

const children = new Set<Child>();

/** SIGKILL for whatever is still alive: the last resort on exit (synchronous, so it runs in 'exit'). */
function killAllNow(): void {
  for (const child of children) {
    try {
      child.proc.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  children.clear();
}

let installed = false;
/** Exit hooks, once: children never outlive the bench, whatever ends it. */
export function installExitHooks(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal}, stopping every child process`);
      killAllNow();
      process.exit(130);
    });
  }
}

/** Runs the bench orchestrator itself on the helper core, so it never competes with a server under test. */
export function pinSelf(core: number): void {
  if (hasTaskset) spawnSync('taskset', ['-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** `command args…` on `core` (when taskset exists), stdout and stderr appended to `logFile`. */
export function startChild(name: string, core: number, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; logFile: string; cwd?: string }): Child {
  const fd = openSync(opts.logFile, 'a');
  // taskset execs the command, so the pid is the server's own (its /proc status is the server's).
  const [file, argv] = hasTaskset ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
  const proc = spawn(file, argv, { stdio: ['ignore', fd, fd], env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  closeSync(fd);
  if (proc.pid === undefined) throw new Error(`bench: could not start ${name} (${command})`);
  const child: Child = { name, proc, pid: proc.pid, logFile: opts.logFile };
  children.add(child);
  proc.once('exit', () => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 3_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child)));
}

/** The last lines of a child's log, for an error message. */
export function logTail(child: Child, lines = 15): string {
  if (!existsSync(child.logFile)) return '(no log)';
  return readFileSync(child.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** A port nobody listens on right now (the child binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Waits until `probe` resolves true; a clear error naming the server when the child exits first
 * or `timeoutMs` passes.
 */
export async function waitReady(child: Child, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`bench: ${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}) before it was ready; its log (${child.logFile}):\n${logTail(child)}`);
    }
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`bench: ${child.name} was not ready within ${timeoutMs / 1000} s; its log (${child.logFile}):\n${logTail(child)}`);
}

/** True when an HTTP GET of `url` answers `status`. */
export async function answers(url: string, status = 200): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  return response.status === status;
}

/** VmRSS and VmHWM of a process, in bytes (Linux /proc); undefined elsewhere. */
export function memoryOf(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const rss = kb('VmRSS');
    return Number.isFinite(rss) ? { rss, peak: kb('VmHWM') } : undefined;
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine, in clock ticks (/proc/stat: everything but idle and iowait). */
function machineBusyTicks(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return user + nice + system + irq + softirq + steal;
}

/** utime + stime of a process (with `reaped`: plus its waited-for children's), in clock ticks. */
function processTicks(pid: number | 'self', reaped = false): number {
  try {
    // Fields after the ")" of the command name: utime is the 12th, stime 13th, cutime 14th, cstime 15th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const [utime = 0, stime = 0, cutime = 0, cstime = 0] = rest.slice(11, 15);
    return utime + stime + (reaped ? cutime + cstime : 0);
  } catch {
    return 0;
  }
}

/**
 * CPU used by processes that are not the bench's (other jobs on a shared machine), as a snapshot
 * whose difference over a run tells how many cores they took meanwhile; undefined off Linux.
 */
export function foreignCpuSnapshot(): { at: number; busy: number; ours: number } | undefined {
  if (!existsSync('/proc/stat')) return undefined;
  // Live children count by their own time; finished ones (wrk runs) are in the bench's cutime.
  const ours = processTicks('self', true) + [...children].reduce((sum, child) => sum + processTicks(child.pid), 0);
  return { at: performance.now(), busy: machineBusyTicks(), ours };
}

/** Cores other processes kept busy on average between two snapshots (100 ticks per second). */
export function foreignCores(before: ReturnType<typeof foreignCpuSnapshot>, after: ReturnType<typeof foreignCpuSnapshot>): number | undefined {
  if (!before || !after) return undefined;
  const seconds = (after.at - before.at) / 1000;
  return Math.max(0, (after.busy - before.busy - (after.ours - before.ours)) / 100 / seconds);
}
