import { expect, test } from "bun:test";
import { parseJsonExact, quoteLargeIntegers } from "./json-int64.js";

test("integers beyond 2^53 stay exact; everything else is untouched", () => {
  expect(parseJsonExact('{"ID": 7289022282209902492, "TTL": 20}')).toEqual({ ID: "7289022282209902492", TTL: 20 });
  expect(parseJsonExact('{"a":-9223372036854775808,"b":9007199254740991,"c":1.5e300}')).toEqual({ a: "-9223372036854775808", b: 9007199254740991, c: 1.5e300 });
  // Digits inside strings (escaped quotes included) are not numbers.
  const s = '{"k":"x\\" 12345678901234567890 ","n":[12345678901234567890]}';
  expect(parseJsonExact(s)).toEqual({ k: 'x" 12345678901234567890 ', n: ["12345678901234567890"] });
  expect(quoteLargeIntegers('{"x":1}')).toBe('{"x":1}');
});
