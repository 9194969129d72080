#!/usr/bin/env bun
// tsetcd: start one member from etcd's flags, ETCD_* variables or a config file.
import { ConfigError, helpText, loadConfig, usageText, versionText, type EtcdConfig } from "../config/load.js";
import { effectiveQuotaBytes } from "../config/derived.js";
import { log } from "../log.js";
import { startServer, type StartOptions } from "../embed/server.js";

// A promise rejection nobody handled is a bug worth a loud log line, but it
// must not take a member (and its clients) down: Bun would exit on it.
process.on("unhandledRejection", (err) => {
  log.error("unhandled promise rejection", { error: String((err as Error)?.stack ?? err) });
});

async function main(): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message.endsWith("\n") ? err.message : err.message + "\n");
      if (err.showUsage) process.stderr.write(usageText());
      return err.exitCode;
    }
    throw err;
  }
  if (loaded.action === "version") {
    process.stdout.write(versionText());
    return 0;
  }
  if (loaded.action === "help") {
    process.stdout.write(helpText());
    return 0;
  }
  const c = loaded.config;
  log.configure(c.logLevel as any, c.logOutputs);
  for (const w of loaded.warnings) log.warn(w);

  const server = await startServer(startOptions(c));

  return new Promise<number>((resolve) => {
    server.onFatal((reason) => {
      log.error("member stopped", { reason });
      resolve(1);
    });
    const onSignal = (signal: string) => {
      log.info("received signal; shutting down", { signal });
      server.stop().then(
        () => resolve(0),
        (err) => {
          log.error("error while stopping", { error: String(err) });
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => onSignal("terminated"));
    process.once("SIGINT", () => onSignal("interrupt"));
  });
}

/** The member and client ports' options from a validated configuration (etcd's names to ours). */
function startOptions(c: EtcdConfig): StartOptions {
  return {
    name: c.name,
    dataDir: c.dataDir,
    initialAdvertisePeerUrls: c.initialAdvertisePeerUrls,
    initialCluster: c.initialCluster,
    initialClusterToken: c.initialClusterToken,
    initialClusterState: c.initialClusterState as "new" | "existing",
    listenPeerUrls: c.listenPeerUrls,
    heartbeatIntervalMs: c.heartbeatInterval,
    electionTimeoutMs: c.electionTimeout,
    snapshotCount: c.snapshotCount,
    leaseCheckpointIntervalMs: c.experimentalLeaseCheckpointInterval,
    preVote: c.preVote,
    strictReconfigCheck: c.strictReconfigCheck,
    peerTlsConfig: {
      peerCertFile: c.peerCertFile,
      peerKeyFile: c.peerKeyFile,
      peerTrustedCaFile: c.peerTrustedCaFile,
      peerClientCertAuth: c.peerClientCertAuth,
      peerAutoTls: c.peerAutoTls,
      peerClientCertFile: c.peerClientCertFile,
      peerClientKeyFile: c.peerClientKeyFile,
      peerCertAllowedCn: c.peerCertAllowedCn,
      selfSignedCertValidity: c.selfSignedCertValidity,
    },
    maxRequestBytes: c.maxRequestBytes,
    bcryptCost: c.bcryptCost,
    quotaBackendBytes: effectiveQuotaBytes(c.quotaBackendBytes) ?? Number.POSITIVE_INFINITY,
    listenClientUrls: c.listenClientUrls,
    advertiseClientUrls: c.advertiseClientUrls,
    maxTxnOps: c.maxTxnOps,
    watchProgressNotifyIntervalMs: c.experimentalWatchProgressNotifyInterval,
    cors: c.cors,
    maxConcurrentStreams: c.maxConcurrentStreams,
    tls: {
      certFile: c.certFile,
      keyFile: c.keyFile,
      trustedCaFile: c.trustedCaFile,
      clientCertAuth: c.clientCertAuth,
      autoTls: c.autoTls,
      validityYears: c.selfSignedCertValidity,
    },
  };
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log.error("failed to start", { error: String((err as Error)?.message ?? err) });
    process.exit(1);
  },
);
