// verifyFile's arguments, checked before any work: a value of the wrong
// kind is a TypeError naming the option (and what it expected), not an
// error from deep inside ("(keys || []).map is not a function", "could not
// read the file at byte 0") or a verdict on something that is no file.
// identity, policy, tsaCa and revoked are checked where they are used
// (verifier.js), with messages of the same kind.

/**
 * What `v` is, for a message (never its contents: it may be a key).
 * @param {unknown} v
 */
function kind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') {
    const tag = Object.prototype.toString.call(v).slice(8, -1);
    return tag === 'Object' ? 'an object' : `a ${tag}`;
  }
  return `a ${typeof v}`;
}

/** Is `v` a Blob or a File (also one from another realm: an iframe's)? @param {unknown} v */
const isBlob = (v) => (typeof Blob === 'function' && v instanceof Blob) || ['[object Blob]', '[object File]'].includes(Object.prototype.toString.call(v));

const CALLBACKS = ['onProgress', 'onEntries', 'onBatch', 'onPages', 'onEngine'];
const ENGINES = ['auto', 'worker', 'main'];
const U32 = 2 ** 32 - 1;

/**
 * Throws a TypeError naming the first argument of verifyFile(file, opts)
 * that is not of the documented kind (src/index.d.ts, VerifyFileOptions).
 * @param {unknown} file
 * @param {unknown} opts
 */
export function checkVerifyFileArgs(file, opts) {
  if (!isBlob(file)) throw new TypeError(`verifyFile: expected a File or Blob to verify, got ${kind(file)}`);
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`verifyFile: expected an options object, got ${kind(opts)}`);
  const o = /** @type {Record<string, unknown>} */ (opts);
  const { keys, trustedCheckpoint, chunkSize, engine, signal, keepValues, sealedList } = o;
  if (keys != null && !(Array.isArray(keys) && keys.every((k) => typeof k === 'string'))) {
    throw new TypeError(`keys: expected an array of verifier keys (strings, name+hex8+base64), got ${typeof keys === 'string' ? 'a string (put it in an array: keys: [key])' : Array.isArray(keys) ? 'an array with a value that is not a string' : kind(keys)}`);
  }
  if (trustedCheckpoint != null && typeof trustedCheckpoint !== 'string') throw new TypeError(`trustedCheckpoint: expected the text of a checkpoint, got ${kind(trustedCheckpoint)}`);
  if (chunkSize !== undefined && !(Number.isSafeInteger(chunkSize) && /** @type {number} */ (chunkSize) >= 1)) {
    throw new TypeError(`chunkSize: expected a whole number of bytes, at least 1, got ${typeof chunkSize === 'number' ? chunkSize : kind(chunkSize)}`);
  }
  if (engine !== undefined && !ENGINES.includes(/** @type {string} */ (engine))) throw new TypeError(`engine: expected 'auto', 'worker' or 'main', got ${typeof engine === 'string' ? JSON.stringify(engine) : kind(engine)}`);
  if (signal != null && !(typeof AbortSignal === 'function' && signal instanceof AbortSignal) && Object.prototype.toString.call(signal) !== '[object AbortSignal]') {
    throw new TypeError(`signal: expected an AbortSignal (AbortController's signal), got ${kind(signal)}`);
  }
  for (const name of CALLBACKS) {
    if (o[name] != null && typeof o[name] !== 'function') throw new TypeError(`${name}: expected a function, got ${kind(o[name])}`);
  }
  if (keepValues != null) {
    const k = /** @type {{values?: unknown, bytes?: unknown}} */ (keepValues);
    const ok = (/** @type {unknown} */ n) => Number.isInteger(n) && /** @type {number} */ (n) >= 0 && /** @type {number} */ (n) <= U32;
    if (typeof keepValues !== 'object' || !ok(k.values) || !ok(k.bytes)) throw new TypeError('keepValues: expected {values, bytes}, whole numbers from 0 to 4294967295');
  }
  if (sealedList != null && typeof sealedList !== 'boolean') throw new TypeError(`sealedList: expected true or false, got ${kind(sealedList)}`);
}
