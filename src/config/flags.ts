// Every server flag etcd 3.5 accepts, with etcd's default and help text.
// This table is the single source of facts: the argv parser, the env-var
// reader, the YAML reader, the defaults and `--help` are all derived from it,
// so adding a flag here is enough for every source to accept it.

export type FlagKind = "string" | "bool" | "int" | "uint" | "duration" | "urls" | "stringList" | "enum";

export type HelpGroup =
  | "Usage"
  | "Member"
  | "Clustering"
  | "Security"
  | "Auth"
  | "Profiling and Monitoring"
  | "Logging"
  | "Experimental distributed tracing"
  | "v2 Proxy (to be deprecated in v3.6)"
  | "Experimental feature"
  | "Unsafe feature";

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** Default, written as the flag's own value syntax (what `--name=<default>` would give). */
  readonly default: string;
  /** etcd's help; extra lines are printed under the first one. */
  readonly help: string;
  readonly implemented: boolean;
  readonly group: HelpGroup;
  /** int/uint: width of the Go type etcd parses into (range errors depend on it). */
  readonly bits?: 32 | 64;
  /** enum: the accepted values. */
  readonly values?: readonly string[];
  /** urls: whole values accepted without URL validation (etcd's "exceptions", e.g. `*` for --cors). */
  readonly allowed?: readonly string[];
  /** stringList: etcd deduplicates and sorts the values (its UniqueStrings flag type). */
  readonly unique?: boolean;
  /** What --help prints after the name when it is not `'<default>'`; null prints nothing. */
  readonly shown?: string | null;
  /**
   * Where a config file sets it: undefined means the key is the flag name, a dotted
   * path names a nested key, null means etcd's config file cannot set it.
   */
  readonly yaml?: string | null;
  /** Accepted by etcd but absent from its --help. */
  readonly hiddenInHelp?: boolean;
}

type Opts = Partial<Omit<FlagSpec, "name" | "kind" | "default" | "help" | "group">>;

let group: HelpGroup = "Usage";
const make = (name: string, kind: FlagKind, def: string, help: string, opts: Opts = {}): FlagSpec => ({
  name,
  kind,
  default: def,
  help,
  implemented: false,
  group,
  ...(kind === "int" || kind === "uint" ? { bits: 64 as const } : {}),
  ...opts,
});
const yes = { implemented: true } as const;
const section = (g: HelpGroup, specs: () => FlagSpec[]): FlagSpec[] => {
  group = g;
  return specs();
};

const TLS_VERSIONS_HELP = "Possible values: TLS1.2, TLS1.3";

export const FLAGS: readonly FlagSpec[] = [
  ...section("Usage", () => [
    make(
      "config-file",
      "string",
      "",
      "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.",
      { ...yes, yaml: null },
    ),
    make("version", "bool", "false", "Print the version and exit.", { ...yes, yaml: null }),
    make("help", "bool", "false", "Show the help information about etcd.", { ...yes, yaml: null }),
  ]),
  ...section("Member", () => [
    make("name", "string", "default", "Human-readable name for this member.", yes),
    make("data-dir", "string", "", "Path to the data directory.", { ...yes, shown: "'${name}.etcd'" }),
    make("wal-dir", "string", "", "Path to the dedicated wal directory."),
    make("snapshot-count", "uint", "100000", "Number of committed transactions to trigger a snapshot to disk.", yes),
    make("heartbeat-interval", "uint", "100", "Time (in milliseconds) of a heartbeat interval.", yes),
    make("election-timeout", "uint", "1000", "Time (in milliseconds) for an election to timeout. See tuning documentation for details.", yes),
    make("initial-election-tick-advance", "bool", "true", "Whether to fast-forward initial election ticks on boot for faster election."),
    make("listen-peer-urls", "urls", "http://localhost:2380", "List of URLs to listen on for peer traffic.", yes),
    make(
      "listen-client-urls",
      "urls",
      "http://localhost:2379",
      "List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified.",
      yes,
    ),
    make(
      "listen-client-http-urls",
      "urls",
      "",
      "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.",
    ),
    make("max-snapshots", "uint", "5", "Maximum number of snapshot files to retain (0 is unlimited)."),
    make("max-wals", "uint", "5", "Maximum number of wal files to retain (0 is unlimited)."),
    make("quota-backend-bytes", "int", "0", "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).", yes),
    make(
      "backend-bbolt-freelist-type",
      "string",
      "map",
      "BackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).",
    ),
    make("backend-batch-interval", "duration", "0s", "BackendBatchInterval is the maximum time before commit the backend transaction.", { shown: "''" }),
    make("backend-batch-limit", "int", "0", "BackendBatchLimit is the maximum operations before commit the backend transaction."),
    make("max-txn-ops", "uint", "128", "Maximum number of operations permitted in a transaction.", yes),
    make("max-request-bytes", "uint", "1572864", "Maximum client request size in bytes the server will accept.", yes),
    make("max-concurrent-streams", "uint", "4294967295", "Maximum concurrent streams that each client can open at a time.", {
      ...yes,
      bits: 32,
      shown: "'math.MaxUint32'",
    }),
    make("enable-grpc-gateway", "bool", "true", "Enable GRPC gateway.", { shown: null }),
    make("grpc-keepalive-min-time", "duration", "5s", "Minimum duration interval that a client should wait before pinging server."),
    make("grpc-keepalive-interval", "duration", "2h", "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
    make("grpc-keepalive-timeout", "duration", "20s", "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
    make("socket-reuse-port", "bool", "false", "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port already in use.", {
      yaml: "socket-options.reuse-port",
    }),
    make("socket-reuse-address", "bool", "false", "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in TIME_WAIT state.", {
      yaml: "socket-options.reuse-address",
    }),
    make("raft-read-timeout", "duration", "5s", "Read timeout set on each rafthttp connection", { yaml: null }),
    make("raft-write-timeout", "duration", "5s", "Write timeout set on each rafthttp connection", { yaml: null }),
  ]),
  ...section("Clustering", () => [
    make("initial-advertise-peer-urls", "urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster.", yes),
    make("initial-cluster", "string", "default=http://localhost:2380", "Initial cluster configuration for bootstrapping.", yes),
    make(
      "initial-cluster-state",
      "enum",
      "new",
      "Initial cluster state ('new' when bootstrapping a new cluster or 'existing' when adding new members to an existing cluster).\nAfter successful initialization (bootstrapping or adding), flag is ignored on restarts.",
      { values: ["new", "existing"], implemented: true },
    ),
    make(
      "initial-cluster-token",
      "string",
      "etcd-cluster",
      "Initial cluster token for the etcd cluster during bootstrap.\nSpecifying this can protect you from unintended cross-cluster interaction when running multiple clusters.",
      yes,
    ),
    make(
      "advertise-client-urls",
      "urls",
      "http://localhost:2379",
      "List of this member's client URLs to advertise to the public.\nThe client URLs advertised should be accessible to machines that talk to etcd cluster. etcd client libraries parse these URLs to connect to the cluster.",
      yes,
    ),
    make("discovery", "string", "", "Discovery URL used to bootstrap the cluster."),
    make("discovery-fallback", "enum", "proxy", "Expected behavior ('exit' or 'proxy') when discovery services fails.\n\"proxy\" supports v2 API only.", {
      values: ["proxy", "exit"],
    }),
    make("discovery-proxy", "string", "", "HTTP proxy to use for traffic to discovery service."),
    make("discovery-srv", "string", "", "DNS srv domain used to bootstrap the cluster."),
    make("discovery-srv-name", "string", "", "Suffix to the dns srv name queried when bootstrapping."),
    make("strict-reconfig-check", "bool", "true", "Reject reconfiguration requests that would cause quorum loss.", yes),
    make("pre-vote", "bool", "true", "Enable to run an additional Raft election phase.", yes),
    make("auto-compaction-retention", "string", "0", "Auto compaction retention length. 0 means disable auto compaction."),
    make(
      "auto-compaction-mode",
      "string",
      "periodic",
      "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.",
    ),
    make("enable-v2", "bool", "false", "Accept etcd V2 client requests. Deprecated and to be decommissioned in v3.6."),
    make(
      "v2-deprecation",
      "enum",
      "not-yet",
      "Phase of v2store deprecation. Allows to opt-in for higher compatibility mode.\nSupported values:\n  'not-yet'                // Issues a warning if v2store have meaningful content (default in v3.5)\n  'write-only'             // Custom v2 state is not allowed (planned default in v3.6)\n  'write-only-drop-data'   // Custom v2 state will get DELETED !\n  'gone'                   // v2store is not maintained any longer. (planned default in v3.7)",
      { values: ["not-yet", "write-only", "write-only-drop-data", "gone"] },
    ),
  ]),
  ...section("Security", () => [
    make("cert-file", "string", "", "Path to the client server TLS cert file.", { yaml: "client-transport-security.cert-file", implemented: true }),
    make("key-file", "string", "", "Path to the client server TLS key file.", { yaml: "client-transport-security.key-file", implemented: true }),
    make("client-cert-auth", "bool", "false", "Enable client cert authentication.", { yaml: "client-transport-security.client-cert-auth", implemented: true }),
    make("client-cert-file", "string", "", "Path to an explicit peer client TLS cert file otherwise cert file will be used when client auth is required.", {
      yaml: "client-transport-security.client-cert-file",
    }),
    make("client-key-file", "string", "", "Path to an explicit peer client TLS key file otherwise key file will be used when client auth is required.", {
      yaml: "client-transport-security.client-key-file",
    }),
    make("client-crl-file", "string", "", "Path to the client certificate revocation list file.", { yaml: null }),
    make("client-cert-allowed-hostname", "stringList", "", "Comma-separated list of SAN hostnames for client cert authentication.", {
      yaml: "client-transport-security.allowed-hostname",
    }),
    make("trusted-ca-file", "string", "", "Path to the client server TLS trusted CA cert file.", {
      yaml: "client-transport-security.trusted-ca-file",
      implemented: true,
    }),
    make("auto-tls", "bool", "false", "Client TLS using generated certificates.", { yaml: "client-transport-security.auto-tls", implemented: true }),
    make("peer-cert-file", "string", "", "Path to the peer server TLS cert file.", { yaml: "peer-transport-security.cert-file", implemented: true }),
    make("peer-key-file", "string", "", "Path to the peer server TLS key file.", { yaml: "peer-transport-security.key-file", implemented: true }),
    make("peer-client-cert-auth", "bool", "false", "Enable peer client cert authentication.", {
      yaml: "peer-transport-security.client-cert-auth",
      implemented: true,
    }),
    make("peer-trusted-ca-file", "string", "", "Path to the peer server TLS trusted CA file.", {
      yaml: "peer-transport-security.trusted-ca-file",
      implemented: true,
    }),
    make("peer-cert-allowed-cn", "stringList", "", "Comma-separated list of allowed CNs for inter-peer TLS authentication.", {
      yaml: "peer-transport-security.allowed-cn",
      implemented: true,
    }),
    make("peer-cert-allowed-hostname", "stringList", "", "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication.", {
      yaml: "peer-transport-security.allowed-hostname",
    }),
    make("peer-auto-tls", "bool", "false", "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.", {
      yaml: "peer-transport-security.auto-tls",
      implemented: true,
    }),
    make(
      "peer-client-cert-file",
      "string",
      "",
      "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required.",
      { yaml: "peer-transport-security.client-cert-file", implemented: true },
    ),
    make(
      "peer-client-key-file",
      "string",
      "",
      "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required.",
      { yaml: "peer-transport-security.client-key-file", implemented: true },
    ),
    make(
      "self-signed-cert-validity",
      "uint",
      "1",
      "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1.",
      yes,
    ),
    make("peer-crl-file", "string", "", "Path to the peer certificate revocation list file.", { yaml: null }),
    make(
      "cipher-suites",
      "stringList",
      "",
      "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).",
    ),
    make("cors", "urls", "*", "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).", {
      ...yes,
      allowed: ["*"],
    }),
    make("host-whitelist", "stringList", "*", "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).", {
      unique: true,
    }),
    make("tls-min-version", "string", "TLS1.2", `Minimum TLS version supported by etcd. ${TLS_VERSIONS_HELP}.`),
    make("tls-max-version", "string", "", `Maximum TLS version supported by etcd. ${TLS_VERSIONS_HELP} (empty will be auto-populated by Go).`),
  ]),
  ...section("Auth", () => [
    make("auth-token", "string", "simple", "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
    make("bcrypt-cost", "uint", "10", "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.", {
      shown: "10",
    }),
    make("auth-token-ttl", "uint", "300", "Time (in seconds) of the auth-token-ttl.", { shown: "300" }),
  ]),
  ...section("Profiling and Monitoring", () => [
    make("enable-pprof", "bool", "false", 'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"'),
    make("metrics", "string", "basic", "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics."),
    make("listen-metrics-urls", "urls", "", "List of URLs to listen on for the /metrics and /health endpoints. For https, the client URL TLS info is used."),
  ]),
  ...section("Logging", () => [
    make("logger", "string", "zap", "Currently only supports 'zap' for structured logging.", yes),
    make(
      "log-outputs",
      "stringList",
      "default",
      "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.",
      { ...yes, unique: true },
    ),
    make("log-level", "string", "info", "Configures log level. Only supports debug, info, warn, error, panic, or fatal.", yes),
    make("enable-log-rotation", "bool", "false", "Enable log rotation of a single log-outputs file target."),
    make(
      "log-rotation-config-json",
      "string",
      '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}',
      "Configures log rotation if enabled with a JSON logger config. MaxSize(MB), MaxAge(days,0=no limit), MaxBackups(0=no limit), LocalTime(use computers local time), Compress(gzip).",
    ),
  ]),
  ...section("Experimental distributed tracing", () => [
    make("experimental-enable-distributed-tracing", "bool", "false", "Enable experimental distributed tracing."),
    make("experimental-distributed-tracing-address", "string", "localhost:4317", "Distributed tracing collector address."),
    make("experimental-distributed-tracing-service-name", "string", "etcd", "Distributed tracing service name, must be same across all etcd instances."),
    make("experimental-distributed-tracing-instance-id", "string", "", "Distributed tracing instance ID, must be unique per each etcd instance."),
    make(
      "experimental-distributed-tracing-sampling-rate",
      "int",
      "0",
      "Number of samples to collect per million spans for distributed tracing. Disabled by default.",
    ),
  ]),
  ...section("v2 Proxy (to be deprecated in v3.6)", () => [
    make("proxy", "enum", "off", "Proxy mode setting ('off', 'readonly' or 'on').", { values: ["off", "readonly", "on"] }),
    make("proxy-failure-wait", "uint", "5000", "Time (in milliseconds) an endpoint will be held in a failed state.", { shown: "5000" }),
    make("proxy-refresh-interval", "uint", "30000", "Time (in milliseconds) of the endpoints refresh interval.", { shown: "30000" }),
    make("proxy-dial-timeout", "uint", "1000", "Time (in milliseconds) for a dial to timeout.", { shown: "1000" }),
    make("proxy-write-timeout", "uint", "5000", "Time (in milliseconds) for a write to timeout.", { shown: "5000" }),
    make("proxy-read-timeout", "uint", "0", "Time (in milliseconds) for a read to timeout.", { shown: "0" }),
  ]),
  ...section("Experimental feature", () => [
    make("experimental-initial-corrupt-check", "bool", "false", "Enable to check data corruption before serving any client/peer traffic."),
    make("experimental-corrupt-check-time", "duration", "0s", "Duration of time between cluster corruption check passes."),
    make("experimental-compact-hash-check-enabled", "bool", "false", "Enable leader to periodically check followers compaction hashes."),
    make("experimental-compact-hash-check-time", "duration", "1m", "Duration of time between leader checks followers compaction hashes."),
    make(
      "experimental-enable-v2v3",
      "string",
      "",
      "Serve v2 requests through the v3 backend under a given prefix. Deprecated and to be decommissioned in v3.6.",
    ),
    make(
      "experimental-enable-lease-checkpoint",
      "bool",
      "false",
      "ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.",
    ),
    make(
      "experimental-enable-lease-checkpoint-persist",
      "bool",
      "false",
      "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases. Always enabled in v3.6. Should be used to ensure smooth upgrade from v3.5 clusters with this feature enabled. Requires experimental-enable-lease-checkpoint to be enabled.",
    ),
    make(
      "experimental-compaction-batch-limit",
      "int",
      "1000",
      "ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.",
      { shown: "1000" },
    ),
    make(
      "experimental-compaction-sleep-interval",
      "duration",
      "10ms",
      "ExperimentalCompactionSleepInterval sets the sleep interval between each compaction batch.",
    ),
    make("experimental-peer-skip-client-san-verification", "bool", "false", "Skip verification of SAN field in client certificate for peer connections.", {
      yaml: null,
    }),
    make("experimental-watch-progress-notify-interval", "duration", "10m", "Duration of periodical watch progress notification.", yes),
    make("experimental-downgrade-check-time", "duration", "5s", "Duration of time between two downgrade status checks.", { shown: null }),
    make("experimental-memory-mlock", "bool", "false", "Enable to enforce etcd pages (in particular bbolt) to stay in RAM.", { shown: null }),
    make("experimental-warning-apply-duration", "duration", "100ms", "Warning is generated if requests take more than this duration."),
    make(
      "experimental-txn-mode-write-with-shared-buffer",
      "bool",
      "true",
      "Enable the write transaction to use a shared buffer in its readonly check operations.",
    ),
    make(
      "experimental-bootstrap-defrag-threshold-megabytes",
      "uint",
      "0",
      "Enable the defrag during etcd server bootstrap on condition that it will free at least the provided threshold of disk space. Needs to be set to non-zero value to take effect.",
      { shown: null },
    ),
    make("experimental-stop-grpc-service-on-defrag", "bool", "false", "Enable etcd gRPC service to stop serving client requests on defragmentation.", {
      shown: null,
    }),
    make(
      "experimental-lease-checkpoint-interval",
      "duration",
      "5m0s",
      "Duration of the interval between lease checkpoints (tsetcd always checkpoints and persists remaining TTLs).",
      { yaml: "experimental-lease-checkpoint-interval", hiddenInHelp: true },
    ),
    make(
      "experimental-snapshot-catchup-entries",
      "uint",
      "5000",
      "(WARNING: Use this flag with caution!) Number of entries for a slow follower to catch up after compacting the raft storage entries.",
      { yaml: "experimental-snapshot-catch-up-entries", hiddenInHelp: true },
    ),
  ]),
  ...section("Unsafe feature", () => [
    make("force-new-cluster", "bool", "false", "Force to create a new one-member cluster."),
    make("unsafe-no-fsync", "bool", "false", "Disables fsync, unsafe, will cause data loss."),
  ]),
];

/**
 * Flags of etcd 0.4/2.x that etcd 3.5 still swallows (with a warning) so old
 * unit files keep starting. They take no value, like Go bool flags.
 */
export const IGNORED_FLAGS: readonly string[] = [
  "cluster-active-size",
  "cluster-remove-delay",
  "cluster-sync-interval",
  "config",
  "force",
  "max-result-buffer",
  "max-retry-attempts",
  "peer-heartbeat-interval",
  "peer-election-timeout",
  "retry-interval",
  "snapshot",
  "v",
  "vv",
];

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));

export function findFlag(name: string): FlagSpec | undefined {
  return BY_NAME.get(name);
}

/** `initial-advertise-peer-urls` → `initialAdvertisePeerUrls`: the EtcdConfig property of a flag. */
export function flagKey(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `data-dir` → `ETCD_DATA_DIR`, as etcd's FlagToEnv. */
export function flagEnv(name: string): string {
  return "ETCD_" + name.replaceAll("-", "_").toUpperCase();
}
