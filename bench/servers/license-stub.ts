/**
 * Stands in for the DRM license server in the token-proxy row: answers every
 * POST /ri/licenseManager.do at once with fixed license bytes (the token is not checked: the
 * row measures passgate, not the license service). Anything else: 404.
 * Run as its own process: `node --import=tsx bench/servers/license-stub.ts --port N`.
 */
import { createServer } from 'node:http';
import { portArg } from './fixed-body.js';

/** A license is a few hundred bytes to a few KB; 1 KB of opaque bytes. */
const LICENSE = Buffer.alloc(1024, 0x5a);

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'POST' && req.url?.startsWith('/ri/licenseManager.do')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LICENSE.length });
      res.end(LICENSE);
      return;
    }
    res.writeHead(req.url === '/livez' ? 200 : 404, { 'content-length': 0 });
    res.end();
  });
});
server.listen(portArg(), '127.0.0.1', () => console.log('license stub listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
