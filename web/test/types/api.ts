// index.d.ts against the implementation: every value it declares must be
// exported by src/verifier.js with a type the declaration accepts, and
// verifier.js exports nothing it does not declare. tsc checks this file
// (web/tsconfig.json, run by web/test/types.test.mjs); it is never run.
import * as impl from '../../src/verifier.js';
import type * as decl from '../../src/index.js';

export const declared: typeof decl = impl;

type Undeclared = Exclude<keyof typeof impl, keyof typeof decl>;
export const nothingUndeclared: [Undeclared] extends [never] ? true : Undeclared = true;
