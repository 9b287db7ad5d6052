import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { link, lstat, open, rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { envelopeKey, labelSchema, type AgentConfig } from '../config/agent.js';
import { ConfigError, loadConfig, redisStoreOptions, type Env } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../infra/logger.js';
import { createStore, type Store } from '../infra/store.js';
import { EnvelopeError, fileIdProblem, protect, unprotect } from './envelope.js';
import { FileRegistry, type RegisteredFile } from './files.js';

/**
 * `passgate protect | unprotect | files …` (SPEC §5): the envelope and the file registry from the
 * command line, with the same configuration and store settings as `serve` (PASSGATE_CONFIG,
 * PASSGATE_DATA_DIR / REDIS_URL), so `protect --register` records a file where the running
 * service sees it. stdout carries one JSON line per success; messages go to stderr.
 */

/** A command line we do not understand: src/cli.ts prints it with the usage, exit 2. */
export class AgentUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentUsageError';
  }
}

/** A refusal or failure with a one-line reason: stderr, exit 1. */
class CommandFailed extends Error {}

export interface AgentCliContext {
  env: Env;
  /** The CLI's help text (printed on --help). */
  usage: string;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

type Command = (args: string[], context: Required<AgentCliContext>) => Promise<number>;

const commands: Record<'protect' | 'unprotect' | 'files', Command> = { protect: protectCommand, unprotect: unprotectCommand, files: filesCommand };

/** Runs one agent command; resolves the exit status. Throws AgentUsageError, ConfigError and StoreUnavailableError for src/cli.ts. */
export async function agentCommand(name: keyof typeof commands, args: string[], context: AgentCliContext): Promise<number> {
  const full: Required<AgentCliContext> = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    ...context,
  };
  try {
    return await commands[name](args, full);
  } catch (error) {
    if (!(error instanceof CommandFailed)) throw error;
    full.stderr(`passgate ${name}: ${error.message}\n`);
    return 1;
  }
}

const text = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;

async function protectCommand(args: string[], context: Required<AgentCliContext>): Promise<number> {
  const values = parse(args, { in: text, out: text, 'file-id': text, label: text, 'key-id': text, register: flag, force: flag });
  if (values.help) return help(context);
  const input = required(values, 'in', 'protect');
  const out = required(values, 'out', 'protect');
  const fileId = checkedFileId(required(values, 'file-id', 'protect'));
  const label = checkedLabel(required(values, 'label', 'protect'));
  const config = loadConfig(context.env);
  const key = pickKey(agentOf(config), values['key-id']);
  await refuseExisting(out, values.force === true);

  const store = values.register ? await openStore(config) : undefined;
  try {
    const stats = await writeAtomically(out, { force: values.force === true }, async (output) => {
      const written = await protect(await openInput(input), output, { keyId: key.id, key: key.bytes, fileId, label });
      // Before the output appears, so a failed registration leaves no unregistered envelope behind.
      if (store) await new FileRegistry(store).register({ fileId, type: 'drm', label, keyId: key.id, registeredAt: new Date().toISOString() });
      return written;
    });
    context.stdout(`${JSON.stringify({ fileId, label, keyId: key.id, ...stats, registered: store !== undefined })}\n`);
    return 0;
  } finally {
    await store?.disconnect();
  }
}

async function unprotectCommand(args: string[], context: Required<AgentCliContext>): Promise<number> {
  const values = parse(args, { in: text, out: text, force: flag });
  if (values.help) return help(context);
  const input = required(values, 'in', 'unprotect');
  const out = required(values, 'out', 'unprotect');
  const agent = agentOf(loadConfig(context.env));
  const keys = new Map(agent.keys.map((key) => [key.id, envelopeKey(key.secret)]));
  await refuseExisting(out, values.force === true);
  try {
    // The plaintext is what the envelope protected: readable by the owner only.
    const { header, plaintextBytes } = await writeAtomically(out, { force: values.force === true, mode: 0o600 }, async (output) =>
      unprotect(await openInput(input), output, (id) => keys.get(id)),
    );
    context.stdout(`${JSON.stringify({ ...header, plaintextBytes })}\n`);
    return 0;
  } catch (error) {
    if (error instanceof EnvelopeError) throw new CommandFailed(`${input}: ${error.message} (${error.reason}); nothing written`);
    throw error;
  }
}

async function filesCommand(args: string[], context: Required<AgentCliContext>): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === '--help' || subcommand === '-h') return help(context);
  if (subcommand !== 'register' && subcommand !== 'show' && subcommand !== 'remove') {
    throw new AgentUsageError('usage: passgate files register … | files show --file-id ID | files remove --file-id ID (see --help)');
  }
  const values = parse(rest, subcommand === 'register' ? { 'file-id': text, type: text, label: text, 'key-id': text } : { 'file-id': text });
  if (values.help) return help(context);
  const fileId = checkedFileId(required(values, 'file-id', `files ${subcommand}`));
  const record = subcommand === 'register' ? registration(values, fileId) : undefined;
  const config = loadConfig(context.env);
  // Every files command needs the agent section (a registry without keys would be meaningless).
  const agent = agentOf(config);
  const file = record?.(agent);

  const store = await openStore(config);
  try {
    const registry = new FileRegistry(store);
    let answer: object;
    if (file) answer = await registry.register(file).then(() => file);
    else if (subcommand === 'show') answer = (await registry.get(fileId)) ?? notRegistered(fileId);
    else answer = (await registry.remove(fileId)) ? { fileId, removed: true } : notRegistered(fileId);
    context.stdout(`${JSON.stringify(answer)}\n`);
    return 0;
  } finally {
    await store.disconnect();
  }
}

function notRegistered(fileId: string): never {
  throw new CommandFailed(`no file registered with id ${JSON.stringify(fileId)}`);
}

/** `files register` flags → the record, once the configured keys are known (checked before any config is read). */
function registration(values: ParsedValues, fileId: string): (agent: AgentConfig) => RegisteredFile {
  const registeredAt = new Date().toISOString();
  if (values.type === 'plain') {
    if (values.label !== undefined || values['key-id'] !== undefined) throw new AgentUsageError('files register --type plain takes no --label or --key-id');
    return () => ({ fileId, type: 'plain', registeredAt });
  }
  if (values.type !== 'drm') throw new AgentUsageError('files register needs --type plain or --type drm');
  const label = checkedLabel(required(values, 'label', 'files register --type drm'));
  return (agent) => ({ fileId, type: 'drm', label, keyId: pickKey(agent, values['key-id']).id, registeredAt });
}

type ParsedValues = Record<string, string | boolean | undefined>;

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean' }>): ParsedValues {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as ParsedValues;
  } catch (error) {
    throw new AgentUsageError((error as Error).message);
  }
}

function required(values: ParsedValues, name: string, command: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new AgentUsageError(`${command} needs --${name}`);
  return value;
}

function checkedFileId(fileId: string): string {
  const problem = fileIdProblem(fileId);
  if (problem) throw new AgentUsageError(`--file-id: ${problem}`);
  return fileId;
}

/** Only labels an entitlement can grant (config labelSchema): any other would make a file nobody may open. */
function checkedLabel(label: string): string {
  const parsed = labelSchema.safeParse(label);
  if (!parsed.success) throw new AgentUsageError(`--label: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

function agentOf(config: Config): AgentConfig {
  if (!config.agent) {
    throw new ConfigError(['agent: this configuration has no agent section, so there are no envelope keys or file registry (see config/example.yaml)'], config.configFile);
  }
  return config.agent;
}

/** `--key-id` among the configured keys; the first (newest) when absent. */
function pickKey(agent: AgentConfig, keyId: string | boolean | undefined): { id: string; bytes: Buffer } {
  const key = keyId === undefined ? agent.keys[0] : agent.keys.find((k) => k.id === keyId);
  if (!key) throw new AgentUsageError(`--key-id ${JSON.stringify(keyId)} is not a configured key (agent.keys: ${agent.keys.map((k) => k.id).join(', ')})`);
  return { id: key.id, bytes: envelopeKey(key.secret) };
}

/** The store `serve` uses with this environment (the embedded file may be open by serve too). */
async function openStore(config: Config): Promise<Store> {
  // Store warnings (a Redis reconnect) on stderr: stdout is for the JSON answer.
  const logger = createLogger({ level: 'warn', destination: process.stderr, sampleIntervalMs: 0 });
  return createStore({ dataDir: config.dataDir, timeoutMs: config.store.timeoutMs, logger, ...redisStoreOptions(config) });
}

async function openInput(path: string) {
  try {
    return (await open(path, 'r')).createReadStream();
  } catch (error) {
    throw new CommandFailed(`cannot read --in ${path}: ${(error as Error).message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function refuseExisting(out: string, force: boolean): Promise<void> {
  if (!force && (await exists(out))) throw new CommandFailed(`--out ${out} exists; pass --force to replace it`);
}

/**
 * Writes `<out>.tmp-<random>` and only once `write` resolved (and the bytes are on disk) gives it
 * the name `out`: a failure or a crash never leaves a partial file at `out`. The temporary file is
 * removed on failure, and on SIGINT/SIGTERM while writing.
 */
async function writeAtomically<T>(out: string, opts: { force: boolean; mode?: number }, write: (output: Writable) => Promise<T>): Promise<T> {
  const tmp = `${out}.tmp-${randomBytes(6).toString('hex')}`;
  let handle;
  try {
    handle = await open(tmp, 'wx', opts.mode ?? 0o666);
  } catch (error) {
    throw new CommandFailed(`cannot write --out ${out}: ${(error as Error).message}`);
  }
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(tmp, { force: true });
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await write(handle.createWriteStream());
    const synced = await open(tmp, 'r');
    await synced.sync().finally(() => synced.close());
    await commit(tmp, out, opts.force);
    return result;
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** rename with --force; otherwise a hard link, which fails rather than replace a file that appeared meanwhile. */
async function commit(tmp: string, out: string, force: boolean): Promise<void> {
  if (force) return rename(tmp, out);
  try {
    await link(tmp, out);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CommandFailed(`--out ${out} appeared while writing; pass --force to replace it`);
    // A filesystem without hard links: check, then rename (a race window, but no partial file).
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
    await refuseExisting(out, false);
    return rename(tmp, out);
  }
  await rm(tmp);
}

function help(context: Required<AgentCliContext>): number {
  context.stdout(context.usage);
  return 0;
}
