import type { LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import type { SimDrmSite, SimRules } from '../rules.js';

/** The license server's answer for an unusable site id (license-errorcode.en.md). */
export type SiteRefusal = { ok: false; errorCode: Extract<LicenseErrorCode, '1003' | '1004'>; detail: string };

/**
 * A site of the rules that is in service: 1003 when there is none by that id (own properties
 * only, so an id like `__proto__` is just unknown), 1004 when the rules disable it.
 */
export function siteInService(rules: SimRules, siteId: string): { ok: true; site: SimDrmSite } | SiteRefusal {
  const { sites } = rules.drm;
  const site = Object.hasOwn(sites, siteId) ? sites[siteId] : undefined;
  if (!site) return { ok: false, errorCode: '1003', detail: `No site ${JSON.stringify(siteId)} in the rules.` };
  if (!site.enabled) return { ok: false, errorCode: '1004', detail: `Site ${siteId} is disabled in the rules.` };
  return { ok: true, site };
}
