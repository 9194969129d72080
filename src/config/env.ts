// ETCD_* environment variables, applied as etcd's SetFlagsFromEnv does: each
// flag not given on the command line takes the value of ETCD_<FLAG> when that
// is non-empty; the rest of the ETCD_* variables only produce warnings.
import { ConfigError } from "./error";
import { FLAGS, IGNORED_FLAGS, flagEnv } from "./flags";
import { flagValueError } from "./schema";

export interface EnvResult {
  /** Raw value by flag name, for flags taken from the environment. */
  values: Map<string, string>;
  warnings: string[];
}

// Not read from the environment: --help is no Go flag, and etcd refuses to let
// ETCD_VERSION turn a server start into a version print.
const SKIPPED = new Set(["help", "version"]);

export function readEnv(env: Record<string, string | undefined>, onCommandLine: ReadonlySet<string>): EnvResult {
  const values = new Map<string, string>();
  const warnings: string[] = [];
  const used = new Set<string>();
  const shadowed = new Set([...onCommandLine].map(flagEnv));
  let lastError: string | undefined;

  // etcd visits flags in name order and reports the last bad one; so do we.
  const names = [...FLAGS.map((f) => f.name).filter((n) => !SKIPPED.has(n)), ...IGNORED_FLAGS].sort();
  for (const name of names) {
    const key = flagEnv(name);
    const value = env[key];
    if (shadowed.has(key) || value === undefined || value === "") continue;
    used.add(key);
    const spec = FLAGS.find((f) => f.name === name);
    if (!spec) {
      warnings.push(`flag --${name} is no longer supported - ignoring`);
      continue;
    }
    const why = flagValueError(spec, value);
    if (why !== undefined) lastError = `invalid value ${JSON.stringify(value)} for ${key}: ${why}`;
    else values.set(name, value);
  }
  if (lastError !== undefined) throw new ConfigError(lastError);

  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || used.has(key)) continue;
    if (key === "ETCD_VERSION") {
      warnings.push(`cannot set special environment variable ETCD_VERSION=${value}`);
    } else if (shadowed.has(key)) {
      // etcd 3.4/3.5 refuse to start when a flag and its variable are both set.
      throw new ConfigError(
        `conflicting environment variable ${JSON.stringify(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
      );
    } else if (key.startsWith("ETCD_")) {
      warnings.push(`unrecognized environment variable ${key}=${value}`);
    }
  }
  return { values, warnings };
}
