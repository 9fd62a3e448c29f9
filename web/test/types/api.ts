// index.d.ts against the implementation: every value it declares must be
// exported by src/verifier.js with a type the declaration accepts, and
// verifier.js exports nothing it does not declare. tsc checks this file
// (web/tsconfig.json, run by web/test/types.test.mjs); it is never run.
import * as impl from '../../src/verifier.js';
import type * as decl from '../../src/index.js';

export const declared: typeof decl = impl;

type Undeclared = Exclude<keyof typeof impl, keyof typeof decl>;
export const nothingUndeclared: [Undeclared] extends [never] ? true : Undeclared = true;

// The incremental Verifier takes a witness policy (issue 14): the option is
// the policy's text, and `Verifier.create` (which loads the module that
// checks it) resolves to a Verifier whose report may carry `quorum`.
const withPolicy: decl.VerifierOptions = { keys: ['k'], policy: 'quorum none\n' };
export const made: () => Promise<decl.Verifier> = () => impl.Verifier.create(withPolicy);
export const quorumMet = async (): Promise<boolean | undefined> => (await made()).finish().quorum?.met;
// @ts-expect-error a policy is text, not bytes
export const policyAsBytes: decl.VerifierOptions = { policy: new Uint8Array(1) };
