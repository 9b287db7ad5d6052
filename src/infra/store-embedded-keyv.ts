/**
 * A keyv 5 store adapter over the embedded store's connection (store-embedded-db.ts), in place of
 * @keyv/sqlite. It keeps @keyv/sqlite 4.0.8's layout, so files written by earlier versions keep
 * working: one table `keyv(key VARCHAR(255) PRIMARY KEY, value TEXT)` shared by every namespace,
 * keys `<namespace>:<key>` (Keyv adds the prefix and sets `namespace`), values keyv's serialized
 * JSON (`{"value":…,"expires":<epoch ms>}`); expiry stays keyv's (checked on read) plus the
 * store's purge. Each method is one statement, so it is atomic on the file.
 */
import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { StoreClosedError, type EmbeddedDb } from './store-embedded-db.js';

export const KEYV_TABLE = 'keyv';
/** The table as @keyv/sqlite 4.0.8 creates it (keySize 255); idempotent. */
export const KEYV_DDL = `CREATE TABLE IF NOT EXISTS ${KEYV_TABLE}(key VARCHAR(255) PRIMARY KEY, value TEXT )`;

const GET = `SELECT value FROM ${KEYV_TABLE} WHERE key = ?1`;
const GET_MANY = `SELECT key, value FROM ${KEYV_TABLE} WHERE key IN (SELECT value FROM json_each(?1))`;
const SET = `INSERT INTO ${KEYV_TABLE}(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value`;
const DELETE = `DELETE FROM ${KEYV_TABLE} WHERE key = ?1`;
const DELETE_MANY = `DELETE FROM ${KEYV_TABLE} WHERE key IN (SELECT value FROM json_each(?1))`;
const HAS = `SELECT EXISTS (SELECT 1 FROM ${KEYV_TABLE} WHERE key = ?1) AS present`;
// A key range on the primary key instead of @keyv/sqlite's `LIKE '<ns>:%'` (a full scan): the same
// rows, since namespace names have no LIKE wildcards or upper case (store-core.ts NAME), and ';' follows ':'.
const CLEAR = `DELETE FROM ${KEYV_TABLE} WHERE key >= ?1 AND key < ?2`;
const CLEAR_ALL = `DELETE FROM ${KEYV_TABLE}`;

export class EmbeddedKeyvAdapter extends EventEmitter implements KeyvStoreAdapter {
  /** keyv reads `opts` (iteration is offered only to adapters naming a dialect: this one offers none). */
  readonly opts = { table: KEYV_TABLE };
  /** Set by Keyv: `<prefix>:<name>`; clear() deletes that namespace only. */
  namespace?: string;
  private disconnected = false;

  constructor(private readonly db: EmbeddedDb) {
    super();
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    this.open();
    return (await this.db.get<{ value: string }>(GET, key))?.value as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    this.open();
    const rows = await this.db.all<{ key: string; value: string }>(GET_MANY, JSON.stringify(keys));
    const values = new Map(rows.map((row) => [row.key, row.value]));
    return keys.map((key) => values.get(key) as StoredData<Value | undefined>);
  }

  async set(key: string, value: string): Promise<void> {
    this.open();
    await this.db.run(SET, key, value);
  }

  async delete(key: string): Promise<boolean> {
    this.open();
    return (await this.db.run(DELETE, key)) > 0;
  }

  /** True when at least one of the keys was there. */
  async deleteMany(keys: string[]): Promise<boolean> {
    this.open();
    return (await this.db.run(DELETE_MANY, JSON.stringify(keys))) > 0;
  }

  async has(key: string): Promise<boolean> {
    this.open();
    return (await this.db.get<{ present: number }>(HAS, key))?.present === 1;
  }

  async clear(): Promise<void> {
    this.open();
    await (this.namespace ? this.db.run(CLEAR, `${this.namespace}:`, `${this.namespace};`) : this.db.run(CLEAR_ALL));
  }

  /** This namespace refuses further calls; the connection is the store's and closes with it. */
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }

  private open(): void {
    if (this.disconnected) throw new StoreClosedError();
  }
}
