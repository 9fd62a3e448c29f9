// Builds Stele log exports in the test, from docs/FORMAT.md alone: canonical
// entries chained by leaf hash, RFC 9162 roots, C2SP signed-note checkpoints
// signed with Ed25519 (node:crypto). For the browser tests of situations the
// shared samples do not cover (an unsigned tail, a look-alike key, hidden
// Unicode in a signed log, a range failure).
// `node --test web/test/` runs every .mjs under test/: this module is a helper, not a test.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';

const sha = (...parts) => createHash('sha256').update(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))).digest();
const leafHash = (line) => sha(Buffer.from([0]), line);
const nodeHash = (l, r) => sha(Buffer.from([1]), l, r);

/** RFC 9162 MTH over leaf hashes. */
export function root(leaves) {
  if (leaves.length === 0) return sha('');
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(root(leaves.slice(0, k)), root(leaves.slice(k)));
}

/** A signing key: {name, vkey, sign(text) -> sig line}. */
export function makeKey(name) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const typed = Buffer.concat([Buffer.from([1]), raw]);
  const id = sha(`${name}\n`, typed).subarray(0, 4);
  return {
    name,
    vkey: `${name}+${id.toString('hex')}+${typed.toString('base64')}`,
    sigLine: (text) => `— ${name} ${Buffer.concat([id, sign(null, Buffer.from(text), privateKey)]).toString('base64')}`,
  };
}

// Canonical JSON (FORMAT 2.2) for the plain values used here: sorted keys, no spaces.
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

const ts = (i) => new Date(Date.UTC(2026, 10, 26, 12) + i * 1000).toISOString().replace('Z', '000Z');

/** A log: append(event), checkpoint(key), text(). */
export class Log {
  constructor(origin, key) {
    this.origin = origin;
    this.lines = [];
    this.leaves = [];
    this.out = ['stele-export v1 log'];
    this.append({ key: key.vkey, origin, type: 'stele.genesis' });
  }

  append(event) {
    const i = this.lines.length;
    const prev = i ? this.leaves[i - 1].toString('hex') : '0'.repeat(64);
    const line = `{"event":${canon(event)},"prev":"${prev}","seq":${i},"ts":"${ts(i)}"}`;
    this.lines.push(line);
    this.leaves.push(leafHash(line));
    this.out.push(line);
    return this;
  }

  checkpoint(...keys) {
    const text = `${this.origin}\n${this.lines.length}\n${root(this.leaves).toString('base64')}\n`;
    this.out.push('checkpoint', ...text.slice(0, -1).split('\n'), '', ...keys.map((k) => k.sigLine(text)));
    return this;
  }

  text() {
    return `${this.out.join('\n')}\n`;
  }
}

export const event = (i, extra = {}) => ({ action: ['login', 'read', 'update'][i % 3], actor: `user${i % 4}@example.com`, outcome: 'success', target: `doc/${i}`, type: 'audit', ...extra });
