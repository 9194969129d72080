// bcrypt as etcd uses it: the cost in the hash, 72 bytes at most, and an
// out-of-range --bcrypt-cost replaced by the default.
import { expect, test } from "bun:test";
import { DEFAULT_BCRYPT_COST, effectiveBcryptCost, hashPassword, verifyPassword } from "./password.js";

test("a hash carries its cost and verifies only its own password", async () => {
  const hash = await hashPassword("secret", 4);
  expect(hash).toMatch(/^\$2[aby]\$04\$.{53}$/);
  expect(await verifyPassword("secret", hash)).toBe(true);
  expect(await verifyPassword("Secret", hash)).toBe(false);
});

test("more than 72 bytes is refused, as Go's bcrypt does, rather than cut", async () => {
  expect(await hashPassword("x".repeat(72), 4)).toMatch(/^\$2/);
  await expect(hashPassword("é".repeat(37), 4)).rejects.toThrow("bcrypt: password length exceeds 72 bytes");
});

test("--bcrypt-cost outside 4..31 falls back to the default", () => {
  expect(effectiveBcryptCost(undefined)).toBe(DEFAULT_BCRYPT_COST);
  expect(effectiveBcryptCost(4)).toBe(4);
  expect(effectiveBcryptCost(31)).toBe(31);
  expect(effectiveBcryptCost(3)).toBe(DEFAULT_BCRYPT_COST);
  expect(effectiveBcryptCost(32)).toBe(DEFAULT_BCRYPT_COST);
});
