import type { EntitlementRule } from '../rules.js';
import type { SimState } from '../state.js';

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlText(raw: string): string {
  const cdata = /^\s*<!\[CDATA\[([\s\S]*?)\]\]>\s*$/.exec(raw);
  if (cdata) return (cdata[1] ?? '').trim();
  return raw
    .replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => entities[name] ?? '')
    .replace(/&#(x[0-9a-f]+|\d+);/gi, (_, n: string) => String.fromCodePoint(n[0] === 'x' || n[0] === 'X' ? parseInt(n.slice(1), 16) : Number(n)))
    .trim();
}

/**
 * The resource id a rule matches: a plain string is itself; an MRSS string
 * (`<rss …><channel><title>REF30</title>…`, adobe-pass.md §4.7) is its channel title.
 * undefined when an MRSS string names no channel title.
 */
export function resourceId(resource: string): string | undefined {
  if (!resource.trimStart().startsWith('<')) return resource;
  const channel = /<channel\b[^>]*>([\s\S]*?)<\/channel>/i.exec(resource)?.[1];
  if (channel === undefined) return undefined;
  // An item's own <title> names the episode, not the channel.
  const title = /<title\b[^>]*>([\s\S]*?)<\/title>/i.exec(channel.replace(/<item\b[\s\S]*?<\/item>/gi, ''))?.[1];
  const id = title === undefined ? '' : xmlText(title);
  return id === '' ? undefined : id;
}

/** `*` matches any run of characters; everything else literally. */
function matches(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*')) return pattern === value;
  const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${source}$`, 's').test(value);
}

/**
 * The first entitlement rule for (mvpd, resource id, userID). A rule with `times` matches that many
 * decisions (remaining uses live in state.ruleUses), then falls through to the next rules.
 */
export function matchEntitlement(state: SimState, mvpd: string, resource: string, userId: string): EntitlementRule | undefined {
  for (const [index, rule] of state.rules.entitlements.entries()) {
    if (!matches(rule.mvpd, mvpd) || !matches(rule.resource, resource) || !matches(rule.user, userId)) continue;
    if (rule.times !== undefined) {
      const left = state.ruleUses.get(index) ?? rule.times;
      if (left <= 0) continue;
      state.ruleUses.set(index, left - 1);
    }
    return rule;
  }
  return undefined;
}
