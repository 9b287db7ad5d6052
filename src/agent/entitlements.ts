import type { AgentConfig } from '../config/agent.js';

/**
 * Which labels a principal may open (config `agent.entitlements`): an exact principal, or every
 * principal of a domain with `*@domain`. The domain compares case-insensitively (DNS names do);
 * the local part exactly, as the platform sent it.
 */
export class AgentEntitlements {
  private readonly exact = new Map<string, Set<string>>();
  private readonly domains = new Map<string, Set<string>>();

  constructor(entitlements: AgentConfig['entitlements']) {
    for (const { principals, labels } of entitlements) {
      for (const principal of principals) {
        const [map, key] = principal.startsWith('*@') ? [this.domains, principal.slice(2).toLowerCase()] : [this.exact, AgentEntitlements.normalise(principal)];
        const set = map.get(key) ?? new Set<string>();
        for (const label of labels) set.add(label);
        map.set(key, set);
      }
    }
  }

  /** `user@Corp.Example` and `user@corp.example` are one principal. */
  private static normalise(principal: string): string {
    const at = principal.lastIndexOf('@');
    return at < 0 ? principal : `${principal.slice(0, at)}@${principal.slice(at + 1).toLowerCase()}`;
  }

  allows(principal: string, label: string): boolean {
    const normalised = AgentEntitlements.normalise(principal);
    if (this.exact.get(normalised)?.has(label)) return true;
    const at = normalised.lastIndexOf('@');
    return at > 0 && (this.domains.get(normalised.slice(at + 1))?.has(label) ?? false);
  }
}
