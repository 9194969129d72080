// Structured JSON logs in the shape of etcd's zap logger: one object per line
// with level, ts, caller and msg first, then fields. Tools that grep etcd's
// logs (etcd's own e2e harness waits for "ready to serve client requests")
// read ours unchanged.
import { appendFileSync } from "node:fs";

export type Level = "debug" | "info" | "warn" | "error" | "panic" | "fatal";
const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 };

type Sink = (line: string) => void;
const stderrSink: Sink = (line) => process.stderr.write(line);

class Logger {
  private min = RANK.info;
  private sinks: Sink[] = [stderrSink];

  /** outputs: etcd's --log-outputs values: "default", "stderr", "stdout" or file paths. */
  configure(level: Level, outputs: string[] = ["default"]): void {
    this.min = RANK[level];
    this.sinks = outputs.map((o): Sink => {
      if (o === "default" || o === "stderr") return stderrSink;
      if (o === "stdout") return (line) => process.stdout.write(line);
      return (line) => appendFileSync(o, line);
    });
  }

  private write(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < this.min) return;
    const head = { level, ts: new Date().toISOString(), caller: "tsetcd", msg };
    const line = JSON.stringify(fields ? { ...head, ...fields } : head, bigintSafe) + "\n";
    for (const sink of this.sinks) sink(line);
  }

  debug(msg: string, fields?: Record<string, unknown>) {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>) {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>) {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>) {
    this.write("error", msg, fields);
  }
  isDebug(): boolean {
    return this.min <= RANK.debug;
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString(16) : value;
}

export const log = new Logger();
