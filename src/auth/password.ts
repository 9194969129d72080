// Password hashing for the auth store: bcrypt at --bcrypt-cost, as etcd. The
// member that takes a request hashes its password; the log carries the hash.
import { Code, EtcdError } from "../errors.js";
import { log } from "../log.js";

/** etcd's --bcrypt-cost range (golang.org/x/crypto/bcrypt's MinCost..MaxCost). */
export const MIN_BCRYPT_COST = 4;
export const MAX_BCRYPT_COST = 31;
export const DEFAULT_BCRYPT_COST = 10;

/** As etcd: a --bcrypt-cost outside 4..31 is replaced by the default, with a warning. */
export function effectiveBcryptCost(given: number | undefined): number {
  if (given === undefined) return DEFAULT_BCRYPT_COST;
  if (Number.isInteger(given) && given >= MIN_BCRYPT_COST && given <= MAX_BCRYPT_COST) return given;
  log.warn("use default bcrypt cost instead of the invalid given cost", {
    "min-cost": MIN_BCRYPT_COST,
    "max-cost": MAX_BCRYPT_COST,
    "default-cost": DEFAULT_BCRYPT_COST,
    "given-cost": given,
  });
  return DEFAULT_BCRYPT_COST;
}

/** bcrypt reads at most 72 bytes; Go's bcrypt refuses more rather than truncate. */
const MAX_PASSWORD_BYTES = 72;

/** The bcrypt hash of a password ("$2b$<cost>$..."), as text. */
export async function hashPassword(password: string, cost: number): Promise<string> {
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) throw new EtcdError(Code.Unknown, "bcrypt: password length exceeds 72 bytes");
  return Bun.password.hash(password, { algorithm: "bcrypt", cost });
}

/** Whether the password matches a bcrypt hash (constant time in the hash's cost). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  return Bun.password.verify(password, hash, "bcrypt");
}
