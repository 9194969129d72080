// The lease driver against a fake host (proposals held until the test applies or fails them)
// and the lessor on a fake clock: the races a second review found.
import { expect, test } from "bun:test";
import { Lessor } from "../lease/lessor.js";
import { MemoryLeaseBackend } from "../lease/sqlite-lease-backend.js";
import { systemClock, systemScheduler } from "../runtime/time.js";
import { LeaseDriver, type LeaseHost } from "./lease-driver.js";

interface Proposal {
  req: any;
  leaderOnly: boolean;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

function setup(checkpointIntervalMs = 0) {
  const clock = { t: 1_000_000 };
  const lessor = new Lessor(new MemoryLeaseBackend(), { minTtl: 2, checkpointIntervalMs, now: () => clock.t });
  const proposals: Proposal[] = [];
  const state = { leader: true };
  const host: LeaseHost = {
    propose: (req, opts) => new Promise((resolve, reject) => proposals.push({ req, leaderOnly: opts?.leaderOnly === true, resolve, reject })),
    isLeader: () => state.leader,
    requestLeader: () => undefined,
    waitApplied: async () => {},
    requestTimeoutMs: 7000,
    electionTimeoutMs: 1000,
    stopped: () => false,
    // The lessor runs on the fake clock above; the driver's own deadlines and retries on real time.
    clock: systemClock,
    scheduler: systemScheduler,
  };
  return { clock, lessor, driver: new LeaseDriver(lessor, host), proposals, state };
}

/** Applies a held checkpoint proposal to the lessor, as the log would. */
function applyCheckpoint(lessor: Lessor, p: Proposal): void {
  for (const cp of p.req.value.checkpoints) lessor.checkpoint(cp.ID, Number(cp.remainingTTL));
  p.resolve({});
}

test("a keep-alive during an expiry revoke in flight answers not found once the revoke applies (review B1)", async () => {
  const { clock, lessor, driver, proposals } = setup();
  lessor.promote(0);
  lessor.grant(1n, 5);
  clock.t += 5050;
  driver.tick(1e9);
  expect(proposals.map((p) => [p.req.case, p.leaderOnly])).toEqual([["leaseRevoke", true]]);
  const answer = driver.renew(1n);
  await Bun.sleep(5);
  lessor.revoke(1n, () => {});
  driver.revoked(1n);
  proposals[0].resolve({});
  expect(await answer).toBe("notFound");
});

test("no expiry or checkpoint proposals once Raft stepped down, even before the lessor is demoted (review B2)", () => {
  const { clock, lessor, driver, proposals, state } = setup(1000);
  lessor.promote(0);
  lessor.grant(1n, 5);
  lessor.grant(2n, 60);
  clock.t += 6000;
  state.leader = false;
  driver.tick(1e9);
  expect(proposals).toEqual([]);
});

test("a checkpoint whose proposal failed but applies later cannot undo a renewal (review R1)", async () => {
  const { clock, lessor, driver, proposals } = setup(10_000);
  lessor.promote(0);
  lessor.grant(1n, 60);
  clock.t += 10_000;
  driver.tick(1e9);
  expect(proposals.length).toBe(1); // checkpoint [1, 50]
  const stale = proposals[0];
  stale.reject(new Error("etcdserver: request timed out")); // ... yet the entry is in the log
  await Bun.sleep(1);
  const answer = driver.renew(1n);
  await Bun.sleep(1);
  // The renewal proposed a reset first; the stale checkpoint applies before it (log order).
  expect(proposals.length).toBe(2);
  expect(proposals[1].req.value.checkpoints.map((c: any) => [c.ID, c.remainingTTL])).toEqual([[1n, 0n]]);
  for (const cp of stale.req.value.checkpoints) lessor.checkpoint(cp.ID, Number(cp.remainingTTL));
  applyCheckpoint(lessor, proposals[1]);
  expect(await answer).toBe(60);
  const promisedUntil = clock.t + 60_000;
  lessor.demote();
  lessor.promote(1000); // a leader change
  expect(clock.t + lessor.remainingMs(1n)!).toBeGreaterThanOrEqual(promisedUntil);
});

test("a checkpoint applied before a renewal is reset by it; renewals share one reset entry", async () => {
  const { clock, lessor, driver, proposals } = setup(10_000);
  lessor.promote(0);
  lessor.grant(1n, 60);
  lessor.grant(2n, 60);
  clock.t += 10_000;
  driver.tick(1e9);
  applyCheckpoint(lessor, proposals[0]);
  expect(lessor.needsReset(1n) && lessor.needsReset(2n)).toBe(true);
  const answers = [driver.renew(1n), driver.renew(2n), driver.renew(1n)];
  await Bun.sleep(1);
  expect(proposals.length).toBe(2);
  expect(proposals[1].req.value.checkpoints.map((c: any) => c.ID).sort()).toEqual([1n, 2n]);
  applyCheckpoint(lessor, proposals[1]);
  expect(await Promise.all(answers)).toEqual([60, 60, 60]);
});
