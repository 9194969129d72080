// The member's assertions: a broken invariant here is a bug in the member, and
// its message says so ("member invariant violated: ..."), as raft's and mvcc's
// name their layers.
import { assertWith, type Assert } from "../assert.js";

export const invariant: Assert = assertWith("member invariant violated");
