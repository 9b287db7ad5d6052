import type Router from '@koa/router';
import { routeTable } from '../../http/route-table.js';
import { createHash } from 'node:crypto';
import type { AppContext, AppState } from '../../http/context.js';
import { Problem } from '../../http/problem.js';
import { storeCall } from '../../http/store-call.js';
import { checkCertificateHashes, renderRevAllowInfo } from './revallowinfo.js';
import type { RevInfoRecord, RevInfoService } from './revinfo.js';

const XML = 'application/xml; charset=utf-8';

/**
 * RFC 9110 §13.1.2–3 as an origin server evaluates them: If-None-Match (weak comparison, `*`), else
 * If-Modified-Since. Not Koa's ctx.fresh, which follows cache rules and ignores both when the
 * request says `Cache-Control: no-cache` — which fetch() adds to every conditional request.
 */
function notModified(ctx: AppContext, etag: string, lastModified: string | undefined): boolean {
  const ifNoneMatch = ctx.get('If-None-Match');
  if (ifNoneMatch) {
    const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => opaque(tag) === opaque(etag));
  }
  const since = Date.parse(ctx.get('If-Modified-Since'));
  const modified = lastModified ? Date.parse(lastModified) : Number.NaN;
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since;
}

/** 200 with validators, or 304 when the request's If-None-Match / If-Modified-Since match. */
function sendXml(ctx: AppContext, xml: string, etag: string, lastModified?: string): void {
  ctx.status = 200;
  ctx.set('ETag', etag);
  if (lastModified) ctx.set('Last-Modified', lastModified);
  // Caches may keep it but must ask again: a new list has to reach the license servers.
  ctx.set('Cache-Control', 'no-cache');
  if (notModified(ctx, etag, lastModified)) {
    ctx.status = 304;
    return;
  }
  ctx.type = XML;
  ctx.body = xml;
}

function lastModifiedOf(record: RevInfoRecord): string {
  const upstream = record.lastModified ? Date.parse(record.lastModified) : Number.NaN;
  return new Date(Number.isNaN(upstream) ? record.fetchedAt : upstream).toUTCString();
}

/**
 * For the in-cluster PlayReady license servers (SPEC §4 "Revocation"):
 * `GET /drm/playready/revinfo` — the stored RevInfo (503 not_ready before the first download);
 * `GET /drm/playready/revallowinfo` — the operator's allow-list as the documented RevAllowInfo XML.
 * Both carry a content ETag (the same on every replica) and answer 304 to a matching If-None-Match.
 */
export function revInfoRoutes(service: RevInfoService | undefined, allowList: () => Promise<string[]>): Router<AppState> {
  const router = routeTable();

  router.get('/drm/playready/revinfo', async (ctx: AppContext) => {
    if (!service) throw new Problem('drm_not_configured', 'No drm.playready.revinfo_url is configured, so passgate keeps no RevInfo.');
    const record = await storeCall('playready revinfo', ctx.state.log, () => service.current());
    if (!record) {
      throw new Problem('not_ready', 'No PlayReady RevInfo has been downloaded yet; retry later.', { headers: { 'Retry-After': '60' } });
    }
    sendXml(ctx, record.xml, `"${record.sha256.slice(0, 32)}"`, lastModifiedOf(record));
  });

  router.get('/drm/playready/revallowinfo', async (ctx: AppContext) => {
    const hashes = await storeCall('playready revallowinfo', ctx.state.log, allowList);
    const check = checkCertificateHashes(hashes);
    if (!check.ok) {
      // The admin endpoints validate before storing, so this is corrupt data: never serve a partial list.
      ctx.state.log.error({ issues: check.issues.slice(0, 5) }, 'playready: the stored RevAllowInfo allow-list is invalid');
      throw new Problem('internal_error', 'The stored RevAllowInfo allow-list is invalid.');
    }
    const xml = renderRevAllowInfo(check.hashes);
    sendXml(ctx, xml, `"${createHash('sha256').update(xml).digest('hex').slice(0, 32)}"`);
  });

  return router;
}
