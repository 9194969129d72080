// The command line, read the way Go's `flag` package reads etcd's: `-f` and
// `--f` are the same, a value follows `=` or is the next argument, a bool
// takes a value only after `=`, parsing stops at the first non-flag argument
// or after `--`, and the first error ends everything.
import { ConfigError } from "./error";
import { findFlag, IGNORED_FLAGS, type FlagSpec } from "./flags";
import { flagValueError } from "./schema";

export interface ArgvResult {
  /** Raw value of each flag given, by flag name; a repeated flag keeps its last value. */
  values: Map<string, string>;
  /** Arguments left after the flags (etcd rejects any). */
  positional: string[];
  /** `-h`, `-help` or `--help` was given (not flags in Go: they trigger usage). */
  help: boolean;
  /** Legacy flags etcd swallows, in the order given. */
  ignored: string[];
}

const usageError = (message: string) => new ConfigError(message, 2);

// --help is listed in our table for the help text, but Go never defines it.
const lookup = (name: string): FlagSpec | "ignored" | undefined => (name === "help" ? undefined : IGNORED_FLAGS.includes(name) ? "ignored" : findFlag(name));

export function parseArgv(argv: readonly string[]): ArgvResult {
  const result: ArgvResult = { values: new Map(), positional: [], help: false, ignored: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.length < 2 || arg[0] !== "-") {
      result.positional = argv.slice(i);
      break;
    }
    const dashes = arg[1] === "-" ? 2 : 1;
    if (dashes === 2 && arg.length === 2) {
      result.positional = argv.slice(i + 1);
      break;
    }
    let name = arg.slice(dashes);
    if (name === "" || name[0] === "-" || name[0] === "=") throw usageError(`bad flag syntax: ${arg}`);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = lookup(name);
    if (spec === undefined) {
      if (name === "help" || name === "h") {
        result.help = true;
        return result;
      }
      throw usageError(`flag provided but not defined: -${name}`);
    }
    if (spec === "ignored") {
      result.ignored.push(name);
      continue;
    }
    if (spec.kind === "bool") {
      if (value === undefined) value = "true";
      else if (flagValueError(spec, value)) throw usageError(`invalid boolean value ${JSON.stringify(value)} for -${name}: parse error`);
    } else {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw usageError(`flag needs an argument: -${name}`);
        value = argv[++i]!;
      }
      const why = flagValueError(spec, value);
      if (why !== undefined) throw usageError(`invalid value ${JSON.stringify(value)} for flag -${name}: ${why}`);
    }
    result.values.set(name, value);
  }
  return result;
}
