import test, { type ExecutionContext } from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientAddressResolver, type ClientAddress } from '../../src/http/client-address.js';

/** A real server answering with what the resolver makes of each request. */
async function echoServer(t: ExecutionContext, trusted: string[], portHeader?: string) {
  const resolve = clientAddressResolver(trusted, portHeader);
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ resolved: resolve(req), peerPort: req.socket.remotePort }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.teardown(() => new Promise<void>((ok) => server.close(() => ok())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return async (headers: Record<string, string> = {}) =>
    (await (await fetch(url, { headers })).json()) as { resolved: ClientAddress; peerPort: number };
}

test('with no trusted proxy, a client-sent X-Forwarded-For is ignored: the socket peer is the device', async (t) => {
  const ask = await echoServer(t, []);
  const { resolved, peerPort } = await ask({ 'x-forwarded-for': '203.0.113.9', 'x-client-port': '4444' });
  t.deepEqual(resolved, { ip: '127.0.0.1', port: peerPort });
});

test('behind a trusted proxy the device is the first untrusted hop from the right', async (t) => {
  const ask = await echoServer(t, ['loopback', '10.0.0.0/8']);
  t.deepEqual((await ask({ 'x-forwarded-for': '203.0.113.9' })).resolved, { ip: '203.0.113.9' });
  // A spoofed left-most entry is not believed: 198.51.100.7 is beyond an untrusted hop.
  t.deepEqual((await ask({ 'x-forwarded-for': '198.51.100.7, 203.0.113.9, 10.1.2.3' })).resolved, { ip: '203.0.113.9' });
  t.is((await ask()).resolved.ip, '127.0.0.1', 'no header: the proxy itself');
});

test('the source port comes from the configured header only through a trusted proxy', async (t) => {
  const trusting = await echoServer(t, ['loopback'], 'x-client-port');
  t.deepEqual((await trusting({ 'x-forwarded-for': '203.0.113.9', 'x-client-port': '51234' })).resolved, { ip: '203.0.113.9', port: 51234 });
  t.deepEqual((await trusting({ 'x-forwarded-for': '203.0.113.9', 'x-client-port': '99999' })).resolved, { ip: '203.0.113.9' });
  const direct = await echoServer(t, [], 'x-client-port');
  const { resolved, peerPort } = await direct({ 'x-client-port': '51234' });
  t.deepEqual(resolved, { ip: '127.0.0.1', port: peerPort });
});
