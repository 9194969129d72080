// Password hashing for the auth store: bcrypt at --bcrypt-cost, as etcd. The
// member that takes a request hashes its password; the log carries the hash.
import { Code, EtcdError } from "../errors.js";

/** etcd's --bcrypt-cost range (golang.org/x/crypto/bcrypt's MinCost..MaxCost). */
export const MIN_BCRYPT_COST = 4;
export const MAX_BCRYPT_COST = 31;
export const DEFAULT_BCRYPT_COST = 10;

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
