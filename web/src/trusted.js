// Trusted Types (a CSP's `require-trusted-types-for 'script'`): a page that
// enforces them lets a worker start only from a TrustedScriptURL. The
// package's workers are then started through a policy named
// 'stele-verifier', which passes the package's own worker scripts and
// nothing else; such a page lists it: `trusted-types stele-verifier`.
//
// Only where the package is served as its files, from the page's origin
// (the caller's URL names it, e.g. /node_modules/@stele/verifier/src/verifier.js): a bundler
// rewrites `new Worker(new URL('./worker.js', import.meta.url))` to the
// worker it emits, and the callers keep that form for it (webpack's
// `output.trustedTypes` then wraps the URL in its own policy).

/** The worker scripts the policy passes, next to this module. */
const SCRIPTS = ['worker.js', 'prepare-worker.js', 'sealed-worker.js'];

/** @type {{createScriptURL(url: string): unknown} | null | undefined} undefined: not made yet; null: none (no Trusted Types, or the page's CSP does not allow the name) */
let policy;

function stelePolicy() {
  if (policy === undefined) {
    policy = null;
    const tt = /** @type {{createPolicy?: (name: string, rules: {createScriptURL(url: string): string}) => {createScriptURL(url: string): unknown}}} */ (/** @type {any} */ (globalThis).trustedTypes);
    if (tt?.createPolicy) {
      const allowed = new Set(SCRIPTS.map((s) => new URL(s, import.meta.url).href));
      try {
        policy = tt.createPolicy('stele-verifier', {
          createScriptURL(url) {
            if (!allowed.has(url)) throw new TypeError(`stele-verifier policy: ${url} is not a worker script of @stele/verifier`);
            return url;
          },
        });
      } catch {
        // the page's trusted-types directive does not name it (or another copy of the package made it)
      }
    }
  }
  return policy;
}

/**
 * The URL to start the worker script `name` (one of SCRIPTS) from, made
 * by the 'stele-verifier' policy; null when the caller should use its
 * bundler-visible `new Worker(new URL(...))`: no Trusted Types, no policy,
 * or `from` (the caller's import.meta.url) is not `file` of this package,
 * served as is (a bundle).
 * @param {string} name
 * @param {string} from
 * @param {string} file  the caller's own file name, e.g. 'verifier.js'
 * @returns {string | null}  a TrustedScriptURL where there is one (Worker takes it as a string)
 */
export function trustedWorkerURL(name, from, file) {
  // (A bundler may put the source file's file: URL for import.meta.url: not served as is.)
  const origin = /** @type {{location?: {origin: string}}} */ (globalThis).location?.origin;
  const at = new URL(name, from);
  if (!from.endsWith(`/src/${file}`) || !origin || origin === 'null' || at.origin !== origin || at.href !== new URL(name, import.meta.url).href) return null;
  const p = stelePolicy();
  return p ? /** @type {string} */ (p.createScriptURL(at.href)) : null;
}
