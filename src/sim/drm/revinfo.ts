import Router from '@koa/router';
import type { Context } from 'koa';
import { createHash } from 'node:crypto';
import type { SimState } from '../state.js';

/**
 * Stands in for Microsoft's RevInfo download (drm.md §4, `https://aka.ms/revinfo`):
 * `GET /playready/revinfo.xml` serves a FAKE RevInfo document in the documented shape, version
 * `rules.drm.playready.revinfoVersion`, with ETag and Last-Modified, and answers 304 to matching
 * conditional requests. `revinfoFault` makes it answer an HTML page or a cut-off document (200).
 */

export const REVINFO_PATH = '/playready/revinfo.xml';

/** The ListIDs of the license-server.md sample (which list each names is [UNCONFIRMED]). */
const LIST_IDS = ['ioydTlK2p0WXkWklprR5Hw==', 'gC4IKKPHsUCCVhnlttibJw==', 'Ef/RUojT3U6Ct2jqTCChbA==', 'BOZ1zT1UnEqfCf5tJOi/kA=='];

/** A fixed publication time per version, so a version always has the same Last-Modified. */
const EPOCH = Date.UTC(2026, 0, 1);
export const revInfoPublishedAt = (version: number) => EPOCH + version * 24 * 3600_000;

/**
 * The fake document. ListData is base64 of ASCII text starting `RLV` (real lists start with the
 * bytes "RLV", base64 `UkxW`), then saying in words that it is fake: no PlayReady server can use it.
 */
export function fakeRevInfo(version: number): string {
  const revocations = LIST_IDS.map((listId, i) => {
    const data = Buffer.from(`RLV passgate-sim fake revocation list ${i + 1}, version ${version}: not issued by Microsoft, for tests only\n`);
    return `<Revocation>\n<ListID>${listId}</ListID>\n<ListData>${data.toString('base64')}</ListData>\n</Revocation>\n`;
  });
  return (
    '<?xml version="1.0" encoding="utf-8"?><RevInfo>\n' +
    `<!-- passgate-sim: FAKE PlayReady revocation data, version ${version}; not from Microsoft -->\n` +
    revocations.join('') +
    '</RevInfo>\n'
  );
}

const FAULT_HTML = '<!DOCTYPE html><html><head><title>Sign in to the network</title></head><body><h1>passgate-sim: not a RevInfo document</h1></body></html>\n';

/**
 * RFC 9110 §13.1.2–3, as an origin server (such as a CDN) evaluates them: If-None-Match with weak
 * comparison, else If-Modified-Since. Koa's ctx.fresh is not used: it applies cache rules and
 * ignores both under `Cache-Control: no-cache`, which fetch() adds to conditional requests.
 */
function notModified(ctx: Context, etag: string, lastModified: string): boolean {
  const ifNoneMatch = ctx.get('If-None-Match');
  if (ifNoneMatch) {
    const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => opaque(tag) === opaque(etag));
  }
  const since = Date.parse(ctx.get('If-Modified-Since'));
  return !Number.isNaN(since) && Date.parse(lastModified) <= since;
}

export function revocationListRoutes(state: SimState): Router {
  const router = new Router();

  router.get('playready.revinfo', REVINFO_PATH, (ctx: Context) => {
    const { revinfoVersion: version, revinfoFault: fault } = state.rules.drm.playready;
    if (fault === 'html') {
      // What a captive portal or a misrouted proxy answers: 200, but no RevInfo.
      ctx.status = 200;
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = FAULT_HTML;
      return;
    }
    const full = fakeRevInfo(version);
    const xml = fault === 'truncated' ? full.slice(0, Math.floor(full.length / 2)) : full;
    ctx.status = 200;
    const etag = `"${createHash('sha256').update(xml).digest('hex').slice(0, 24)}"`;
    const lastModified = new Date(revInfoPublishedAt(version)).toUTCString();
    ctx.set('ETag', etag);
    ctx.set('Last-Modified', lastModified);
    // The real download is a file named like RevInfo2v61_20211006.xml (drm.md §4).
    ctx.set('Content-Disposition', `attachment; filename="RevInfo2v${version}_passgate-sim.xml"`);
    if (notModified(ctx, etag, lastModified)) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'application/xml; charset=utf-8';
    ctx.body = xml;
  });

  return router;
}
