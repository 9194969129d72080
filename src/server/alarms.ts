// The member's alarms (etcd's alarm store): NOSPACE when the backend quota is
// exceeded. Alarms change only through the log (ACTIVATE / DEACTIVATE
// entries) and are persisted in meta inside the apply transaction, so every
// member and every restart agrees on them. While NOSPACE is active the
// key space is capped: writes that add data are refused, deletes and
// compaction still work (etcd's "capped" applier).
import { create } from "@bufbuild/protobuf";
import {
  AlarmMemberSchema,
  AlarmRequest_AlarmAction,
  AlarmResponseSchema,
  AlarmType,
  type AlarmMember,
  type AlarmRequest,
  type AlarmResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { MetaStore } from "../storage/meta-store.js";

const META_KEY = "alarms";

export class Alarms {
  private readonly active = new Map<string, AlarmMember>();

  constructor(private readonly meta: MetaStore) {
    const stored = meta.getText(META_KEY);
    if (stored) {
      for (const [member, alarm] of JSON.parse(stored) as [string, number][]) {
        this.active.set(`${member}:${alarm}`, create(AlarmMemberSchema, { memberID: BigInt(member), alarm }));
      }
    }
  }

  list(): AlarmMember[] {
    return [...this.active.values()];
  }

  has(alarm: AlarmType): boolean {
    for (const a of this.active.values()) if (a.alarm === alarm) return true;
    return false;
  }

  /** Applies a logged ACTIVATE / DEACTIVATE; the response lists the alarms it changed (as etcd). */
  apply(req: AlarmRequest): AlarmResponse {
    const key = `${req.memberID}:${req.alarm}`;
    const changed: AlarmMember[] = [];
    if (req.action === AlarmRequest_AlarmAction.ACTIVATE && req.alarm !== AlarmType.NONE) {
      const m = this.active.get(key) ?? create(AlarmMemberSchema, { memberID: req.memberID, alarm: req.alarm });
      this.active.set(key, m);
      changed.push(m);
    } else if (req.action === AlarmRequest_AlarmAction.DEACTIVATE) {
      const m = this.active.get(key);
      if (m) {
        this.active.delete(key);
        changed.push(m);
      }
    }
    this.persist();
    return create(AlarmResponseSchema, { alarms: changed });
  }

  private persist(): void {
    const rows = this.list().map((a) => [a.memberID.toString(), a.alarm]);
    this.meta.setText(META_KEY, JSON.stringify(rows));
  }
}
