// The texts etcd prints instead of starting: `--version`, `--help`, and the
// usage that follows a command-line error. Generated from the flags table so
// the help can never list a flag we do not accept, or miss one we do.
import { SERVER_VERSION } from "../version";
import { FLAGS, type HelpGroup } from "./flags";

const GO_ARCH: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm" };

/** What `--version` prints to stdout, in etcd's four-line shape. */
export function versionText(): string {
  const arch = GO_ARCH[process.arch] ?? process.arch;
  return [`etcd Version: ${SERVER_VERSION}`, "Git SHA: tsetcd", `Go Version: bun ${Bun.version}`, `Go OS/Arch: ${process.platform}/${arch}`, ""].join("\n");
}

/** What etcd prints to stderr for `--help` and after a command-line error. */
export function usageText(): string {
  return `Usage:

  etcd [flags]
    Start an etcd server.

  etcd --version
    Show the version of etcd.

  etcd -h | --help
    Show the help information about etcd.

  etcd --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.

`;
}

const GROUPS: readonly HelpGroup[] = [
  "Member",
  "Clustering",
  "Security",
  "Auth",
  "Profiling and Monitoring",
  "Logging",
  "Experimental distributed tracing",
  "v2 Proxy (to be deprecated in v3.6)",
  "Experimental feature",
  "Unsafe feature",
];

/** What `--help` prints to stdout: every flag by group, with default and help. */
export function helpText(): string {
  const sections = GROUPS.map((group) => {
    const lines = [`${group}:`];
    for (const f of FLAGS) {
      if (f.group !== group || f.hiddenInHelp) continue;
      const shown = f.shown === undefined ? `'${f.default}'` : f.shown;
      lines.push(`  --${f.name}${shown === null ? "" : ` ${shown}`}`);
      for (const line of f.help.split("\n")) lines.push(`    ${line}`);
    }
    return lines.join("\n") + "\n";
  });
  const caution = "CAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!\n";
  return `\n${sections.join("\n")}\n${caution}\n`;
}
