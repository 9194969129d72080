// The one error the configuration loader throws. etcd reports bad
// configuration two ways, and a drop-in must do the same:
//  - the command line does not parse (unknown flag, bad value): Go's flag
//    package prints the message and the usage text to stderr, exit status 2;
//  - the configuration parses but is invalid (env var, config file, cross-flag
//    check, positional argument): etcd logs "failed to verify flags" with the
//    message as its error, exit status 1.
export class ConfigError extends Error {
  constructor(
    message: string,
    /** The exit status etcd uses for this kind of error. */
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = "ConfigError";
  }

  /** True when etcd would print the usage text after the message. */
  get showUsage(): boolean {
    return this.exitCode === 2;
  }
}
