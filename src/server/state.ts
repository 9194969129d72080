// The replicated state of a member over its database (etcd's backend and the
// views over it): the MVCC key space, leases, alarms and membership, plus the
// watch hub fed by the store. Installing a snapshot replaces the tables
// underneath, so every in-memory view is rebuilt from them in one place.
import type { Database } from "bun:sqlite";
import { AuthStore } from "../auth/store.js";
import { SqliteAuthBackend } from "../auth/sqlite-auth-backend.js";
import { Lessor } from "../lease/lessor.js";
import { SqliteLeaseBackend } from "../lease/sqlite-lease-backend.js";
import { SqliteBackend } from "../mvcc/sqlite-backend.js";
import { MvccStore } from "../mvcc/store.js";
import { MetaStore } from "../storage/meta-store.js";
import { storeSource, WatchHub, type HubOptions } from "../watch/hub.js";
import { Alarms } from "./alarms.js";
import { Membership } from "./membership.js";

export interface StateOptions {
  /** Lease TTLs are raised to this many seconds (etcd: 1.5 election timeouts). */
  minLeaseTtl: number;
  leaseCheckpointIntervalMs: number;
  /** The member's monotonic clock (lease expiry). */
  now(): number;
  hub?: HubOptions;
}

export class MemberState {
  readonly meta: MetaStore;
  readonly lessor: Lessor;
  readonly membership: Membership;
  readonly watchHub: WatchHub;
  /** Users and roles, read from their tables; its permission cache is keyed by the auth revision, so a snapshot install needs nothing rebuilt. */
  readonly auth: AuthStore;
  /** Replaced when a snapshot is installed: read it through this object, never keep it. */
  store: MvccStore;
  /** Replaced when a snapshot is installed, like the store. */
  alarms: Alarms;

  /** Prepared statements over the member's tables: they outlive a snapshot install, which replaces rows, not tables. */
  private readonly backend: SqliteBackend;

  constructor(db: Database, opts: StateOptions) {
    this.backend = new SqliteBackend(db);
    this.meta = new MetaStore(db);
    this.lessor = new Lessor(new SqliteLeaseBackend(db), {
      minTtl: opts.minLeaseTtl,
      checkpointIntervalMs: opts.leaseCheckpointIntervalMs,
      now: opts.now,
    });
    this.store = this.openStore();
    this.watchHub = new WatchHub(storeSource(this.store), opts.hub);
    this.alarms = new Alarms(this.meta);
    this.membership = new Membership(db);
    this.auth = new AuthStore(new SqliteAuthBackend(db));
  }

  /**
   * A snapshot install replaced the tables (inside its transaction): every view is rebuilt from
   * them now, because entries of the same Ready are applied next and must see the new state.
   */
  reload(): void {
    this.lessor.reload();
    this.store = this.openStore();
    this.watchHub.storeReplaced(storeSource(this.store));
    this.alarms = new Alarms(this.meta);
    this.membership.reload();
  }

  /** The MVCC store over the member's tables: the lessor indexes its leased keys, the watch hub gets its events. */
  private openStore(): MvccStore {
    const store = new MvccStore(this.backend, { leases: this.lessor });
    store.onEvents = (rev, evs) => this.watchHub.publish(rev, evs);
    return store;
  }
}
