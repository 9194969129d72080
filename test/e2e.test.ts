// etcd 3.4's own e2e tests for the key-value, cluster and membership commands, run against bin/tsetcd as `etcd`.
// The whole suite (243 tests, ~15 min) is scripts/e2e-all.ts; this is the part npm test runs.
import { describe, expect, test } from "bun:test";
import { exactRunRegex, runE2E } from "./harness/e2e.ts";
import { E2E_BIN, ETCDCTL_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

/** Add a test here by its exact name (`etcd-e2e.test -test.list '.*'` lists them). */
export const E2E_TESTS = [
  "TestCtlV3Put",
  "TestCtlV3PutNoTLS",
  "TestCtlV3PutClientTLS",
  "TestCtlV3PutClientAutoTLS",
  "TestCtlV3PutPeerTLS",
  "TestCtlV3PutClientTLSFlagByEnv",
  "TestCtlV3PutIgnoreValue",
  "TestCtlV3Get",
  "TestCtlV3GetNoTLS",
  "TestCtlV3GetClientTLS",
  "TestCtlV3GetClientAutoTLS",
  "TestCtlV3GetPeerTLS",
  "TestCtlV3GetFormat",
  "TestCtlV3GetRev",
  "TestCtlV3GetKeysOnly",
  "TestCtlV3Del",
  "TestCtlV3DelNoTLS",
  "TestCtlV3DelClientTLS",
  "TestCtlV3DelPeerTLS",
  "TestCtlV3TxnInteractiveSuccess",
  "TestCtlV3TxnInteractiveSuccessNoTLS",
  "TestCtlV3TxnInteractiveSuccessClientTLS",
  "TestCtlV3TxnInteractiveSuccessPeerTLS",
  "TestCtlV3TxnInteractiveFail",
  "TestCtlV3Compact",
  "TestCtlV3CompactPhysical",
  "TestCtlV3EndpointStatus",
  "TestCtlV3Defrag",
  "TestCtlV3EndpointHealth",
  "TestCtlV3GetQuorum",
  "TestV3CurlPutGetPeerTLS",
  "TestEtcdUnixPeers",
  "TestCtlV3MemberList",
  "TestCtlV3MemberListNoTLS",
  "TestCtlV3MemberListClientTLS",
  "TestCtlV3MemberListClientAutoTLS",
  "TestCtlV3MemberListPeerTLS",
  "TestCtlV3MemberRemove",
  "TestCtlV3MemberRemoveNoTLS",
  "TestCtlV3MemberRemoveClientTLS",
  "TestCtlV3MemberRemoveClientAutoTLS",
  "TestCtlV3MemberRemovePeerTLS",
  "TestCtlV3MemberAdd",
  "TestCtlV3MemberAddNoTLS",
  "TestCtlV3MemberAddClientTLS",
  "TestCtlV3MemberAddClientAutoTLS",
  "TestCtlV3MemberAddPeerTLS",
  "TestCtlV3MemberAddForLearner",
  "TestCtlV3MemberUpdate",
  "TestCtlV3MemberUpdateNoTLS",
  "TestCtlV3MemberUpdateClientTLS",
  "TestCtlV3MemberUpdateClientAutoTLS",
  "TestCtlV3MemberUpdatePeerTLS",
  "TestCtlV3MoveLeaderScenarios",
  "TestCtlV3Version",
  "TestCtlV3Watch",
  "TestCtlV3WatchNoTLS",
  "TestCtlV3WatchClientTLS",
  "TestCtlV3WatchPeerTLS",
  "TestCtlV3WatchTimeout",
  "TestCtlV3WatchInteractive",
  "TestCtlV3WatchInteractiveNoTLS",
  "TestCtlV3WatchInteractiveClientTLS",
  "TestCtlV3WatchInteractivePeerTLS",
  "TestV3CurlPutGetNoTLS",
  "TestV3CurlPutGetClientTLS",
  "TestV3CurlPutGetAutoTLS",
  "TestV3CurlTxn",
] as const;

const GO_TIMEOUT_SEC = 600;
const ready = requireTools([E2E_BIN, ETCDCTL_BIN, SUBJECT_BIN]);

describe.skipIf(!ready)(`etcd e2e suite against ${SUBJECT_BIN}`, () => {
  test(
    E2E_TESTS.join(", "),
    async () => {
      const r = await runE2E({ etcd: SUBJECT_BIN, run: exactRunRegex(E2E_TESTS), goTimeoutSec: GO_TIMEOUT_SEC });
      // On failure, show the suite's own output: it says which etcdctl line did not match.
      const summary = { code: r.code, timedOut: r.timedOut, failed: r.failed, notPassed: E2E_TESTS.filter((t) => !r.passed.includes(t)) };
      if (summary.code !== 0 || summary.notPassed.length > 0) console.error(r.tail.slice(-20_000));
      expect(summary).toEqual({ code: 0, timedOut: false, failed: [], notPassed: [] });
    },
    (GO_TIMEOUT_SEC + 90) * 1000,
  );
});
