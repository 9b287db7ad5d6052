import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The package root. This file sits two levels below it both as src/config/package.ts (tsx)
 * and as dist/config/package.js (built), so one relative URL serves both.
 */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The YAML file used when PASSGATE_CONFIG is not set: wires passgate to the simulator. */
export const bundledConfigFile = fileURLToPath(new URL('../../config/example.yaml', import.meta.url));

let version: string | undefined;

/** The version in package.json (read once; the build does not copy package.json into dist/). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}
