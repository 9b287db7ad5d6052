import { createHash } from 'node:crypto';
import type { Keyv } from 'keyv';
import type { Store } from '../infra/store.js';

export interface AgentSession {
  partner: string;
  principal: string;
  createdAt: number;
}

/**
 * Kep-AgentSession (DSID) → the user principal it was authenticated for (SPEC §5), fleet-wide in
 * the store with a TTL. Keyed by the partner and a SHA-256 of the DSID: the store never holds a
 * partner's session key itself, and one partner's DSID means nothing to another partner.
 */
export class AgentSessions {
  private readonly records: Keyv<AgentSession>;

  constructor(
    store: Store,
    private readonly ttlMs: number,
  ) {
    this.records = store.namespace<AgentSession>('agent-sessions');
  }

  private static key(partner: string, dsid: string): string {
    return `${partner}:${createHash('sha256').update(dsid).digest('base64url')}`;
  }

  /** A short, non-reversible handle for logs (never the DSID itself). */
  static handle(dsid: string): string {
    return createHash('sha256').update(dsid).digest('base64url').slice(0, 12);
  }

  async remember(partner: string, dsid: string, principal: string, now: number): Promise<void> {
    await this.records.set(AgentSessions.key(partner, dsid), { partner, principal, createdAt: now }, this.ttlMs);
  }

  async principalOf(partner: string, dsid: string): Promise<string | undefined> {
    const record = await this.records.get(AgentSessions.key(partner, dsid));
    return record?.partner === partner ? record.principal : undefined;
  }
}
