// The one schema every configuration source feeds. Command line, env vars
// and config files all produce the same raw object (camelCase flag keys,
// values as strings or YAML natives); this schema parses the values, fills
// the defaults etcd derives from other settings, and applies etcd's
// cross-flag checks with etcd's messages.
import { z } from "zod";
import { bool, duration, int, list, oneOf, optStr, str, uint, urls } from "./fields";
import { parseCompactionRetention, parseInitialCluster } from "./derived";
import { flagKey, type FlagSpec } from "./flags";
import { isGoIP, parseGoBool, splitHostPort } from "./gosyntax";

/** The fields, one per flag (minus --version and --help, which are actions). */
export const configFields = {
  configFile: str("config-file"),

  name: str("name"),
  dataDir: optStr("data-dir"),
  walDir: str("wal-dir"),
  snapshotCount: uint("snapshot-count"),
  heartbeatInterval: uint("heartbeat-interval"),
  electionTimeout: uint("election-timeout"),
  initialElectionTickAdvance: bool("initial-election-tick-advance"),
  listenPeerUrls: urls("listen-peer-urls"),
  listenClientUrls: urls("listen-client-urls"),
  listenClientHttpUrls: urls("listen-client-http-urls"),
  maxSnapshots: uint("max-snapshots"),
  maxWals: uint("max-wals"),
  quotaBackendBytes: int("quota-backend-bytes"),
  backendBboltFreelistType: str("backend-bbolt-freelist-type"),
  backendBatchInterval: duration("backend-batch-interval"),
  backendBatchLimit: int("backend-batch-limit"),
  maxTxnOps: uint("max-txn-ops"),
  maxRequestBytes: uint("max-request-bytes"),
  maxConcurrentStreams: uint("max-concurrent-streams"),
  enableGrpcGateway: bool("enable-grpc-gateway"),
  grpcKeepaliveMinTime: duration("grpc-keepalive-min-time"),
  grpcKeepaliveInterval: duration("grpc-keepalive-interval"),
  grpcKeepaliveTimeout: duration("grpc-keepalive-timeout"),
  socketReusePort: bool("socket-reuse-port"),
  socketReuseAddress: bool("socket-reuse-address"),
  raftReadTimeout: duration("raft-read-timeout"),
  raftWriteTimeout: duration("raft-write-timeout"),

  initialAdvertisePeerUrls: urls("initial-advertise-peer-urls"),
  initialCluster: optStr("initial-cluster"),
  initialClusterState: oneOf("initial-cluster-state", ["new", "existing"]),
  initialClusterToken: str("initial-cluster-token"),
  advertiseClientUrls: urls("advertise-client-urls"),
  discovery: str("discovery"),
  discoveryFallback: oneOf("discovery-fallback", ["proxy", "exit"]),
  discoveryProxy: str("discovery-proxy"),
  discoverySrv: str("discovery-srv"),
  discoverySrvName: str("discovery-srv-name"),
  strictReconfigCheck: bool("strict-reconfig-check"),
  preVote: bool("pre-vote"),
  autoCompactionRetention: str("auto-compaction-retention"),
  autoCompactionMode: str("auto-compaction-mode"),
  enableV2: bool("enable-v2"),
  v2Deprecation: oneOf("v2-deprecation", ["not-yet", "write-only", "write-only-drop-data", "gone"]),

  certFile: str("cert-file"),
  keyFile: str("key-file"),
  clientCertAuth: bool("client-cert-auth"),
  clientCertFile: str("client-cert-file"),
  clientKeyFile: str("client-key-file"),
  clientCrlFile: str("client-crl-file"),
  clientCertAllowedHostname: list("client-cert-allowed-hostname"),
  trustedCaFile: str("trusted-ca-file"),
  autoTls: bool("auto-tls"),
  peerCertFile: str("peer-cert-file"),
  peerKeyFile: str("peer-key-file"),
  peerClientCertAuth: bool("peer-client-cert-auth"),
  peerTrustedCaFile: str("peer-trusted-ca-file"),
  peerCertAllowedCn: list("peer-cert-allowed-cn"),
  peerCertAllowedHostname: list("peer-cert-allowed-hostname"),
  peerAutoTls: bool("peer-auto-tls"),
  peerClientCertFile: str("peer-client-cert-file"),
  peerClientKeyFile: str("peer-client-key-file"),
  selfSignedCertValidity: uint("self-signed-cert-validity"),
  peerCrlFile: str("peer-crl-file"),
  cipherSuites: list("cipher-suites"),
  cors: urls("cors"),
  hostWhitelist: list("host-whitelist"),
  tlsMinVersion: str("tls-min-version"),
  tlsMaxVersion: str("tls-max-version"),

  authToken: str("auth-token"),
  bcryptCost: uint("bcrypt-cost"),
  authTokenTtl: uint("auth-token-ttl"),

  enablePprof: bool("enable-pprof"),
  metrics: str("metrics"),
  listenMetricsUrls: urls("listen-metrics-urls"),

  logger: str("logger"),
  logOutputs: list("log-outputs"),
  logLevel: str("log-level"),
  enableLogRotation: bool("enable-log-rotation"),
  logRotationConfigJson: str("log-rotation-config-json"),

  experimentalEnableDistributedTracing: bool("experimental-enable-distributed-tracing"),
  experimentalDistributedTracingAddress: str("experimental-distributed-tracing-address"),
  experimentalDistributedTracingServiceName: str("experimental-distributed-tracing-service-name"),
  experimentalDistributedTracingInstanceId: str("experimental-distributed-tracing-instance-id"),
  experimentalDistributedTracingSamplingRate: int("experimental-distributed-tracing-sampling-rate"),

  proxy: oneOf("proxy", ["off", "readonly", "on"]),
  proxyFailureWait: uint("proxy-failure-wait"),
  proxyRefreshInterval: uint("proxy-refresh-interval"),
  proxyDialTimeout: uint("proxy-dial-timeout"),
  proxyWriteTimeout: uint("proxy-write-timeout"),
  proxyReadTimeout: uint("proxy-read-timeout"),

  experimentalInitialCorruptCheck: bool("experimental-initial-corrupt-check"),
  experimentalCorruptCheckTime: duration("experimental-corrupt-check-time"),
  experimentalCompactHashCheckEnabled: bool("experimental-compact-hash-check-enabled"),
  experimentalCompactHashCheckTime: duration("experimental-compact-hash-check-time"),
  experimentalEnableV2v3: str("experimental-enable-v2v3"),
  experimentalEnableLeaseCheckpoint: bool("experimental-enable-lease-checkpoint"),
  experimentalEnableLeaseCheckpointPersist: bool("experimental-enable-lease-checkpoint-persist"),
  experimentalCompactionBatchLimit: int("experimental-compaction-batch-limit"),
  experimentalCompactionSleepInterval: duration("experimental-compaction-sleep-interval"),
  experimentalPeerSkipClientSanVerification: bool("experimental-peer-skip-client-san-verification"),
  experimentalWatchProgressNotifyInterval: duration("experimental-watch-progress-notify-interval"),
  experimentalDowngradeCheckTime: duration("experimental-downgrade-check-time"),
  experimentalMemoryMlock: bool("experimental-memory-mlock"),
  experimentalWarningApplyDuration: duration("experimental-warning-apply-duration"),
  experimentalTxnModeWriteWithSharedBuffer: bool("experimental-txn-mode-write-with-shared-buffer"),
  experimentalBootstrapDefragThresholdMegabytes: uint("experimental-bootstrap-defrag-threshold-megabytes"),
  experimentalStopGrpcServiceOnDefrag: bool("experimental-stop-grpc-service-on-defrag"),
  experimentalSnapshotCatchupEntries: uint("experimental-snapshot-catchup-entries"),
  experimentalLeaseCheckpointInterval: duration("experimental-lease-checkpoint-interval"),

  forceNewCluster: bool("force-new-cluster"),
  unsafeNoFsync: bool("unsafe-no-fsync"),
};

export type ConfigKey = keyof typeof configFields;

/** Fill in what etcd derives when it is not given: data dir and initial cluster from the name. */
function derive<T extends z.output<z.ZodObject<typeof configFields>>>(c: T) {
  const discovering = c.discovery !== "" || c.discoverySrv !== "" || c.discoverySrvName !== "";
  const name = c.name === "" ? "default" : c.name;
  return {
    ...c,
    dataDir: c.dataDir === undefined || c.dataDir === "" ? `${c.name}.etcd` : c.dataDir,
    initialCluster: c.initialCluster ?? (discovering ? "" : c.initialAdvertisePeerUrls.map((u) => `${name}=${u}`).join(",")),
  };
}

type Derived = ReturnType<typeof derive>;
/** A check returns etcd's message for the first problem it finds, or nothing. */
type Check = (c: Derived) => string | undefined;

const MAX_ELECTION_MS = 50000;
const LOG_LEVELS = ["debug", "info", "warn", "error", "panic", "fatal"];
const TLS_VERSIONS = ["", "TLS1.2", "TLS1.3"];

function hostPortOf(u: string): string {
  const m = /^\w+:\/\/([^/?#]*)/.exec(u);
  return m ? m[1]!.slice(m[1]!.lastIndexOf("@") + 1) : "";
}

/** etcd binds only to IPs (or localhost), never resolving names. */
const bindURLs =
  (flag: string, pick: (c: Derived) => string[]): Check =>
  (c) => {
    for (const u of pick(c)) {
      if (u.startsWith("unix:") || u.startsWith("unixs:")) continue;
      const hp = splitHostPort(hostPortOf(u));
      if (!hp.ok) return `--${flag}: ${hp.error}`;
      if (hp.value.host !== "localhost" && !isGoIP(hp.value.host)) return `--${flag}: expected IP in URL for binding (${u})`;
    }
  };

const hostURLs =
  (flag: string, pick: (c: Derived) => string[]): Check =>
  (c) => {
    const list = pick(c);
    for (const u of list) {
      const hp = splitHostPort(hostPortOf(u));
      const why = !hp.ok ? hp.error : hp.value.host === "" ? `unexpected empty host (${u})` : undefined;
      if (why) return `--${flag} ${JSON.stringify(list.join(","))} must be "host:port" (${why})`;
    }
  };

const logging: Check = (c) => {
  if (c.logger === "capnslog") return "--logger=capnslog is removed in v3.5";
  if (c.logger !== "zap") return `unknown logger option ${JSON.stringify(c.logger)}`;
  if (c.logOutputs.length > 1 && c.logOutputs.includes("default")) {
    return `--log-outputs: multi logoutput for "default" is not supported yet`;
  }
  if (!LOG_LEVELS.includes(c.logLevel)) {
    return `--log-level: unrecognized level ${JSON.stringify(c.logLevel)} (must be one of ${LOG_LEVELS.join(", ")})`;
  }
  if (!c.enableLogRotation) return;
  const files = c.logOutputs.filter((o) => !["default", "stderr", "stdout"].includes(o));
  if (files.length !== 1 || c.logOutputs.length !== 1) {
    return "--log-outputs requires a single file path when --log-rotate-config-json is defined";
  }
  try {
    JSON.parse(c.logRotationConfigJson);
  } catch (e) {
    return `--log-rotation-config-json: improperly formatted log rotation config: ${(e as Error).message}`;
  }
};

const raftTiming: Check = (c) => {
  if (c.heartbeatInterval === 0) return `--heartbeat-interval must be >0 (set to ${c.heartbeatInterval}ms)`;
  if (c.electionTimeout === 0) return `--election-timeout must be >0 (set to ${c.electionTimeout}ms)`;
  if (5 * c.heartbeatInterval > c.electionTimeout) {
    return `--election-timeout[${c.electionTimeout}ms] should be at least as 5 times as --heartbeat-interval[${c.heartbeatInterval}ms]`;
  }
  if (c.electionTimeout > MAX_ELECTION_MS) {
    return `--election-timeout[${c.electionTimeout}ms] is too long, and should be set less than ${MAX_ELECTION_MS}ms`;
  }
};

const bootstrap: Check = (c) => {
  if ([c.discovery, c.initialCluster, c.discoverySrv].filter((s) => s !== "").length > 1) {
    return `multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"`;
  }
};

const advertisedClients: Check = (c) => {
  // A v2 proxy (or a discovery that may fall back to one) needs no advertised client URLs.
  const mayBeProxy = c.proxy !== "off" || (c.discovery !== "" && c.discoveryFallback === "proxy");
  if (c.listenClientUrls.length > 0 && c.advertiseClientUrls.length === 0 && !mayBeProxy) {
    return "--advertise-client-urls is required when --listen-client-urls is set explicitly";
  }
};

const compaction: Check = (c) => {
  if (c.autoCompactionMode !== "" && c.autoCompactionMode !== "periodic" && c.autoCompactionMode !== "revision") {
    return `unknown auto-compaction-mode ${JSON.stringify(c.autoCompactionMode)}`;
  }
  const retention = parseCompactionRetention(c.autoCompactionMode, c.autoCompactionRetention);
  if (!retention.ok) return `--auto-compaction-retention: ${retention.error}`;
};

const experimental: Check = (c) => {
  if (c.experimentalEnableLeaseCheckpointPersist && !c.experimentalEnableLeaseCheckpoint) {
    return "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint";
  }
  if (c.experimentalCompactHashCheckTime <= 0) {
    return `--experimental-compact-hash-check-time must be >0 (set to ${c.experimentalCompactHashCheckTime}ms)`;
  }
};

const tls: Check = (c) => {
  for (const [flag, v] of [
    ["tls-min-version", c.tlsMinVersion],
    ["tls-max-version", c.tlsMaxVersion],
  ] as const) {
    if (!TLS_VERSIONS.includes(v)) return `--${flag}: unexpected TLS version ${JSON.stringify(v)} (must be one of: TLS1.2, TLS1.3)`;
  }
  const rank = (v: string) => TLS_VERSIONS.indexOf(v);
  if (c.tlsMaxVersion !== "" && rank(c.tlsMinVersion) > rank(c.tlsMaxVersion)) {
    return `min version (${c.tlsMinVersion}) is greater than max version (${c.tlsMaxVersion})`;
  }
  if (c.tlsMinVersion === "TLS1.3" && c.cipherSuites.length > 0) {
    return "cipher suites cannot be configured when only TLS1.3 is enabled";
  }
};

const tracing: Check = (c) => {
  const rate = c.experimentalDistributedTracingSamplingRate;
  if (c.experimentalEnableDistributedTracing && (rate < 0 || rate > 1_000_000)) {
    const why = rate < 0 ? "must be positive" : "must be less than 1000000";
    return `distributed tracing configurition is not valid: (tracing sampling rate ${why})`;
  }
};

// etcd parses this only when bootstrapping; checking it here fails fast with the flag named.
const initialCluster: Check = (c) => {
  const cluster = parseInitialCluster(c.initialCluster);
  if (!cluster.ok) return `--initial-cluster ${JSON.stringify(c.initialCluster)}: ${cluster.error}`;
};

/** etcd's embed.Config.Validate plus etcdmain's checks, in etcd's order. */
const CHECKS: Check[] = [
  logging,
  bindURLs("listen-peer-urls", (c) => c.listenPeerUrls),
  bindURLs("listen-client-urls", (c) => c.listenClientUrls),
  bindURLs("listen-client-http-urls", (c) => c.listenClientHttpUrls),
  bindURLs("listen-metrics-urls", (c) => c.listenMetricsUrls),
  hostURLs("initial-advertise-peer-urls", (c) => c.initialAdvertisePeerUrls),
  hostURLs("advertise-client-urls", (c) => c.advertiseClientUrls),
  bootstrap,
  raftTiming,
  advertisedClients,
  compaction,
  experimental,
  tls,
  tracing,
  initialCluster,
];

export const EtcdConfigSchema = z
  .object(configFields)
  .transform(derive)
  .superRefine((c, ctx) => {
    for (const check of CHECKS) {
      const message = check(c);
      if (message !== undefined) return ctx.addIssue({ code: "custom", message, input: c });
    }
  });

/** The validated configuration: one property per etcd flag, durations in milliseconds. */
export type EtcdConfig = z.output<typeof EtcdConfigSchema>;

/**
 * Why `value` is not acceptable for a flag, in Go's flag-package wording
 * ("parse error", "invalid value", a URL error), or undefined when it is.
 * The command line and env vars check each value as they read it, because
 * etcd stops at the first bad one.
 */
export function flagValueError(spec: FlagSpec, value: string): string | undefined {
  if (!(flagKey(spec.name) in configFields)) {
    return spec.kind === "bool" && parseGoBool(value) === undefined ? "parse error" : undefined;
  }
  const r = configFields[flagKey(spec.name) as ConfigKey].safeParse(value);
  return r.success ? undefined : (r.error.issues[0]?.message ?? "invalid value");
}
