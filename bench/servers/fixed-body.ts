/** The fixed answer of the floor servers: 60 bytes of JSON, as in issue 10's bare row. */
export const FIXED_JSON = Buffer.from(JSON.stringify({ ok: true, note: 'fixed answer of the floor server: 60 B.' }));
if (FIXED_JSON.length !== 60) throw new Error(`the fixed body is ${FIXED_JSON.length} bytes, not 60`);

/** `--port N` from the command line. */
export function portArg(): number {
  const i = process.argv.indexOf('--port');
  const port = Number(process.argv[i + 1]);
  if (i < 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error('usage: --port N');
  return port;
}
