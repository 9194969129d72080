// `--config-file`: etcd's YAML configuration, whose keys are the flag names,
// except for TLS settings (nested under client-transport-security and
// peer-transport-security) and socket options (under socket-options). Values
// are returned raw; the schema checks them like any other source.
//
// Unlike etcd, which silently ignores keys it does not know, we warn about
// them: a misspelt key is otherwise a setting that quietly never applies.
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { ConfigError } from "./error";
import { FLAGS, type FlagSpec } from "./flags";
import { describe } from "./fields";

export interface YamlResult {
  /** Raw value by flag name. */
  values: Map<string, unknown>;
  /** The key path each value came from, by flag name, for messages. */
  keys: Map<string, string>;
  warnings: string[];
}

/** YAML key path (lower-cased: etcd matches keys case-insensitively) → flag. */
const BY_KEY = new Map<string, FlagSpec>();
/** Flag names etcd does not read as top-level keys: where it reads them instead, if anywhere. */
const ELSEWHERE = new Map<string, string | null>();
for (const f of FLAGS) {
  if (f.yaml !== null) BY_KEY.set(f.yaml ?? f.name, f);
  if (f.yaml !== undefined) ELSEWHERE.set(f.name, f.yaml);
}
const SECTIONS = new Set([...BY_KEY.keys()].filter((k) => k.includes(".")).map((k) => k.split(".")[0]!));
/** Keys etcd reads whose setting tsetcd has no flag for. */
const UNSUPPORTED = new Set(["client-transport-security.allowed-cn"]);
/** etcd skips these keys when they hold an empty string. */
const EMPTY_MEANS_UNSET = new Set(
  FLAGS.filter((f) => f.kind === "urls")
    .map((f) => f.name)
    .concat("host-whitelist"),
);

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (e as Error).message;
    throw new ConfigError(`cannot read config file: open ${path}: ${why}`);
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function readConfigFile(path: string): YamlResult {
  const where = `config file ${JSON.stringify(path)}`;
  // YAML 1.1 is what etcd's parser speaks: `yes`/`on` are booleans there.
  const doc = parseDocument(readText(path), { version: "1.1", uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new ConfigError(`${where}: invalid YAML: ${doc.errors[0]!.message}`);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const result: YamlResult = { values: new Map(), keys: new Map(), warnings: [] };
  if (data === null || data === undefined) return result;
  if (!isMapping(data)) throw new ConfigError(`${where}: expected a mapping of etcd flag names to values, got ${describe(data)}`);

  const take = (keyPath: string, value: unknown) => {
    const lower = keyPath.toLowerCase();
    const spec = BY_KEY.get(lower);
    if (spec) {
      if (value === null || (value === "" && EMPTY_MEANS_UNSET.has(spec.name))) return;
      result.values.set(spec.name, value);
      result.keys.set(spec.name, keyPath);
    } else if (UNSUPPORTED.has(lower)) {
      result.warnings.push(`${where}: key ${JSON.stringify(keyPath)} is accepted but not implemented by tsetcd yet`);
    } else if (ELSEWHERE.has(lower)) {
      const at = ELSEWHERE.get(lower);
      const why = at ? `etcd reads --${lower} from ${JSON.stringify(at)}` : `etcd does not read --${lower} from a config file`;
      result.warnings.push(`${where}: key ${JSON.stringify(keyPath)} is ignored: ${why}`);
    } else {
      result.warnings.push(`${where}: unknown key ${JSON.stringify(keyPath)} ignored`);
    }
  };

  for (const [key, value] of Object.entries(data)) {
    const section = key.toLowerCase();
    if (!SECTIONS.has(section)) {
      take(key, value);
      continue;
    }
    if (value === null) continue;
    if (!isMapping(value)) throw new ConfigError(`${where}: key ${JSON.stringify(key)}: expected a mapping, got ${describe(value)}`);
    for (const [sub, subValue] of Object.entries(value)) take(`${section}.${sub}`, subValue);
  }
  return result;
}
