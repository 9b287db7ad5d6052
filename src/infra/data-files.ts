import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What passgate writes under PASSGATE_DATA_DIR (the embedded store, its WAL and shared-memory
 * files, the generated keyring) holds sealed credentials and key material: the directory is 0700
 * and the files 0600, owner only. Files from an older version (SQLite creates its file as 0644
 * under the usual umask) are tightened at start.
 */
export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

/**
 * Creates the data directory (0700) or tightens an existing one; returns what it tightened.
 * A directory passgate does not own (a volume mounted by the platform) is left as it is:
 * its files are still owner-only.
 */
export function ensurePrivateDataDir(dir: string): string[] {
  mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  return tighten(dir, DATA_DIR_MODE) ? [dir] : [];
}

/** Creates `file` empty with mode 0600 if it is missing (so whoever opens it next keeps that mode). */
export function createPrivateFile(file: string): void {
  try {
    closeSync(openSync(file, 'wx', DATA_FILE_MODE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/** Tightens each existing file of `names` in `dir` to 0600; returns the paths it changed. */
export function tightenDataFiles(dir: string, names: string[]): string[] {
  return names.map((name) => join(dir, name)).filter((file) => tighten(file, DATA_FILE_MODE));
}

/** Removes permission bits beyond `mode`; false when there were none, the path is missing or not ours. */
function tighten(path: string, mode: number): boolean {
  let current: number;
  try {
    const stat = statSync(path);
    if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) return false;
    current = stat.mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if ((current & ~mode) === 0) return false;
  chmodSync(path, current & mode);
  return true;
}
