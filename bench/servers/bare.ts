/**
 * Floor (a): bare node:http answering a fixed 60-byte JSON to anything, after reading the body.
 * Run as its own process: `node --import=tsx bench/servers/bare.ts --port N`.
 */
import { createServer } from 'node:http';
import { FIXED_JSON, portArg } from './fixed-body.js';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': FIXED_JSON.length });
    res.end(FIXED_JSON);
  });
});
server.listen(portArg(), '127.0.0.1', () => console.log('bare node:http listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
