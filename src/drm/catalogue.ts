import type { CatalogueEntry, DrmConfig } from '../config/schema.js';
import type { LicensePolicyV2 } from './pallycon/policy-schema.js';

export interface CataloguePolicy {
  name: string;
  /** The policy JSON text that goes into tokens, as serialised once at start-up. */
  text: string;
  policy: LicensePolicyV2;
}

export type CatalogueMatch = { ok: true; policy: CataloguePolicy } | { ok: false; reason: 'resource_not_in_catalogue' | 'content_not_in_resource' };

/** The catalogue of SPEC §4: which content ids a resource covers (exact or prefix) and their license policy. */
export class Catalogue {
  constructor(
    private readonly entries: Record<string, CatalogueEntry>,
    private readonly policies: DrmConfig['policies'],
  ) {}

  /** Own properties only: a resource named `__proto__` or `constructor` is just unknown. */
  private entry(resource: string): CatalogueEntry | undefined {
    return Object.hasOwn(this.entries, resource) ? this.entries[resource] : undefined;
  }

  covers(entry: CatalogueEntry, contentId: string): boolean {
    return entry.exact.includes(contentId) || entry.prefixes.some((prefix) => contentId.startsWith(prefix));
  }

  match(resource: string, contentId: string): CatalogueMatch {
    const entry = this.entry(resource);
    if (!entry) return { ok: false, reason: 'resource_not_in_catalogue' };
    if (!this.covers(entry, contentId)) return { ok: false, reason: 'content_not_in_resource' };
    const policy = this.policies[entry.policy];
    // config/drm.ts refuses a catalogue naming an unknown policy, so this is a programming error.
    if (!policy) throw new Error(`catalogue ${resource}: policy ${entry.policy} is missing`);
    return { ok: true, policy: { name: entry.policy, text: policy.text, policy: policy.policy } };
  }

  /** The resources whose content ids include `contentId` (the callback mode may not know the resource). */
  resourcesOf(contentId: string): string[] {
    return Object.values(this.entries)
      .filter((entry) => this.covers(entry, contentId))
      .map((entry) => entry.resource);
  }
}
