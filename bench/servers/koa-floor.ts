/**
 * Floor (b), "the Koa floor": koa + @koa/router + @koa/bodyparser with one trivial POST route
 * answering the same fixed 60-byte JSON (and GET /livez for the readiness probe).
 * Run as its own process: `node --import=tsx bench/servers/koa-floor.ts --port N`.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import { FIXED_JSON, portArg } from './fixed-body.js';

const fixed: unknown = JSON.parse(FIXED_JSON.toString('utf8'));
const app = new Koa();
const router = new Router();
router.post('/v1/license-token', (ctx) => {
  ctx.body = fixed;
});
router.get('/livez', (ctx) => {
  ctx.body = fixed;
});
app.use(bodyParser());
app.use(router.routes());
app.use(router.allowedMethods());
const server = app.listen(portArg(), '127.0.0.1', () => console.log('koa floor listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
