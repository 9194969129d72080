// The Maintenance service: what a single member can answer today.
import type { Member } from "../server/member.js";
import type { ServiceImpl } from "./context.js";

export function maintenanceService(member: Member): ServiceImpl {
  return {
    status() {
      return member.status();
    },
  };
}
