// Turns a command line and an environment into a validated configuration, in
// etcd 3.5's order: parse the flags (errors here are usage errors); handle
// --help and --version; then either the config file is the whole
// configuration (flags and env vars ignored) or the flags plus ETCD_* env vars
// are. Every source yields raw values keyed by flag name, checked by one schema.
import { parseArgv, type ArgvResult } from "./argv";
import { readEnv } from "./env";
import { ConfigError } from "./error";
import { describe } from "./fields";
import { FLAGS, findFlag, flagEnv, flagKey } from "./flags";
import { parseGoBool } from "./gosyntax";
import { configFields, EtcdConfigSchema, type ConfigKey, type EtcdConfig } from "./schema";
import { readConfigFile } from "./yamlfile";

export { ConfigError } from "./error";
export { helpText, usageText, versionText } from "./help";
export type { EtcdConfig } from "./schema";

export interface LoadedConfig {
  config: EtcdConfig;
  warnings: string[];
  action: "run" | "version" | "help";
}

/** What one source (command line + env, or a config file) set. */
interface Source {
  /** Raw value by flag name. */
  values: Map<string, unknown>;
  /** Flags the user set; a value the loader infers (like etcd's cleared advertise URLs) is not one. */
  explicit: Set<string>;
  warnings: string[];
  /** Message for a value the schema rejects, naming where it came from. */
  describeError: (flag: string, value: unknown, reason: string) => string;
}

// These have defaults computed from other settings (see schema.ts `derive`).
const DERIVED = new Set(["data-dir", "initial-cluster"]);

/**
 * @param argv the arguments after the program name (process.argv.slice(2))
 * @param env the environment (process.env)
 * @throws ConfigError on bad input, with etcd's message and exit status
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): LoadedConfig {
  const args = parseArgv(argv);
  if (args.help) return { action: "help", config: defaultConfig(), warnings: [] };
  const warnings = args.ignored.map((name) => `flag --${name} is no longer supported - ignoring`);
  if (args.positional.length > 0) throw new ConfigError(`'${args.positional[0]}' is not a valid flag`);
  if (parseGoBool(args.values.get("version") ?? "false")) return { action: "version", config: defaultConfig(), warnings };

  const configFile = args.values.get("config-file") || env[flagEnv("config-file")] || "";
  const source = configFile !== "" ? fromConfigFile(configFile, args, env) : fromCommandLine(args, env);
  const config = finish(source);
  for (const f of FLAGS) {
    if (source.explicit.has(f.name) && !f.implemented) warnings.push(`flag --${f.name} is accepted but not implemented by tsetcd yet`);
  }
  return { action: "run", config, warnings: [...warnings, ...source.warnings] };
}

/** The configuration etcd runs with when given nothing. */
export function defaultConfig(): EtcdConfig {
  return finish(fromCommandLine(parseArgv([]), {}));
}

function fromCommandLine(args: ArgvResult, env: Record<string, string | undefined>): Source {
  const fromEnv = readEnv(env, new Set(args.values.keys()));
  const values = new Map<string, unknown>([...fromEnv.values, ...args.values]);
  const explicit = new Set(values.keys());
  // As etcd: listening on chosen client URLs without saying which to advertise is an error,
  // rather than silently advertising the default localhost URL.
  if (explicit.has("listen-client-urls") && !explicit.has("advertise-client-urls")) values.set("advertise-client-urls", []);
  return {
    values,
    explicit,
    warnings: fromEnv.warnings,
    describeError: (flag, value, reason) =>
      args.values.has(flag)
        ? `invalid value ${describe(value)} for flag -${flag}: ${reason}`
        : `invalid value ${describe(value)} for ${flagEnv(flag)}: ${reason}`,
  };
}

function fromConfigFile(path: string, args: ArgvResult, env: Record<string, string | undefined>): Source {
  const file = readConfigFile(path);
  const values = new Map<string, unknown>([...file.values, ["config-file", path]]);
  const ignored = [
    ...[...args.values.keys()].filter((n) => n !== "config-file").map((n) => `--${n}`),
    ...Object.keys(env).filter((k) => k.startsWith("ETCD_") && k !== flagEnv("config-file") && env[k] !== undefined),
  ];
  const warnings = [...file.warnings];
  if (ignored.length > 0) {
    warnings.unshift(
      `loaded server configuration from ${JSON.stringify(path)}; as etcd does, other command line flags and environment variables are ignored: ${ignored.join(", ")}`,
    );
  }
  return {
    values,
    explicit: new Set(file.values.keys()),
    warnings,
    describeError: (flag, value, reason) => {
      const spec = findFlag(flag);
      const choices = spec?.values ? ` (valid values: ${spec.values.join(", ")})` : "";
      const what = reason.startsWith("expected") ? reason : `invalid value ${describe(value)}: ${reason}${choices}`;
      return `config file ${JSON.stringify(path)}: key ${JSON.stringify(file.keys.get(flag) ?? flag)}: ${what}`;
    },
  };
}

/** A flag's default as raw input. Empty URL lists are Go's zero value, which no URL string spells. */
function defaultRaw(flag: string): unknown {
  const spec = findFlag(flag)!;
  if (DERIVED.has(flag)) return undefined;
  return spec.kind === "urls" && spec.default === "" ? [] : spec.default;
}

const KEY_TO_FLAG = new Map(FLAGS.map((f) => [flagKey(f.name), f.name]));

/** Raw values over defaults, through the schema; the first problem becomes the error. */
function finish(source: Source): EtcdConfig {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(configFields) as ConfigKey[]) {
    const flag = KEY_TO_FLAG.get(key)!;
    raw[key] = source.values.has(flag) ? source.values.get(flag) : defaultRaw(flag);
  }
  const parsed = EtcdConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.path[0];
  if (typeof key !== "string") throw new ConfigError(issue.message);
  const flag = KEY_TO_FLAG.get(key)!;
  throw new ConfigError(source.describeError(flag, raw[key], issue.message));
}
