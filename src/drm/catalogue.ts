import type { CatalogueEntry, DrmConfig } from '../config/schema.js';
import { setNewest } from '../infra/bounded-map.js';
import { encryptPolicy } from './pallycon/crypto.js';
import type { LicensePolicyV2 } from './pallycon/policy-schema.js';
import { boundPolicy } from './permit-bound.js';

/** Bounded copies kept (about one per policy and Permit end in use); beyond it the oldest is encrypted again when asked. */
const MAX_BOUNDED_POLICIES = 4096;

export interface CataloguePolicy {
  name: string;
  /** The policy JSON text that goes into tokens, as serialised once at start-up. */
  text: string;
  /** `text` encrypted under the site key (drm.md §1.3; fixed IV, so the same for every token). */
  encrypted: string;
  policy: LicensePolicyV2;
}

export type CatalogueMatch = { ok: true; policy: CataloguePolicy } | { ok: false; reason: 'resource_not_in_catalogue' | 'content_not_in_resource' };

/** The catalogue of SPEC §4: which content ids a resource covers (exact or prefix) and their license policy. */
export class Catalogue {
  private readonly policies = new Map<string, CataloguePolicy>();
  /** Policies bounded to a Permit's end, by name and text: encrypted once, not per token. */
  private readonly bounded = new Map<string, CataloguePolicy>();

  constructor(
    private readonly entries: Record<string, CatalogueEntry>,
    policies: DrmConfig['policies'],
    private readonly siteKey: string,
  ) {
    for (const [name, { text, policy }] of Object.entries(policies)) {
      this.policies.set(name, { name, text, encrypted: encryptPolicy(text, siteKey), policy });
    }
  }

  /**
   * `policy` for a Permit ending at `notAfter` (permit-bound.ts): itself when its licenses end
   * by then (ordinary Permits: no work beyond a comparison), else a copy whose licenses do;
   * undefined when less than a second of the Permit is left.
   */
  boundTo(policy: CataloguePolicy, now: number, notAfter: number): CataloguePolicy | undefined {
    const bound = boundPolicy(policy.policy, now, notAfter);
    if (bound.kind === 'unchanged') return policy;
    if (bound.kind === 'ended') return undefined;
    const text = JSON.stringify(bound.policy);
    const key = `${policy.name}\n${text}`;
    const known = this.bounded.get(key);
    if (known) return known;
    const copy = { name: policy.name, text, encrypted: encryptPolicy(text, this.siteKey), policy: bound.policy };
    setNewest(this.bounded, key, copy, MAX_BOUNDED_POLICIES);
    return copy;
  }

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
    const policy = this.policies.get(entry.policy);
    // config/drm.ts refuses a catalogue naming an unknown policy, so this is a programming error.
    if (!policy) throw new Error(`catalogue ${resource}: policy ${entry.policy} is missing`);
    return { ok: true, policy };
  }

  /** The resources whose content ids include `contentId` (the callback mode may not know the resource). */
  resourcesOf(contentId: string): string[] {
    return Object.values(this.entries)
      .filter((entry) => this.covers(entry, contentId))
      .map((entry) => entry.resource);
  }
}
