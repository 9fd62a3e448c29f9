// Development mock of the wasm-bindgen module (same API as web/pkg/stele_wasm.js).
// It does NOT verify anything cryptographically: it only exists so the page can be
// built before the real module exists. Rules: a JSON line with "type":"checkpoint"
// is a checkpoint; any other JSON line is an entry; an entry whose JSON contains
// "TAMPERED" fails with prev_mismatch; verdict is verified when there are no
// failures and a key whose name is "good" was given, unverified otherwise.
export default async function init() {}
export function initSync() {}

export function parseVerifierKey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  if (!m) throw new Error(`verifier key "${vkey.slice(0, 40)}" is not of the form name+hex8+base64`);
  return JSON.stringify({ name: m[1], key_id: m[2] });
}

const dec = new TextDecoder();
const trunc = (v) => (v == null ? null : (typeof v === 'string' ? v : JSON.stringify(v)).slice(0, 200));

export class WasmVerifier {
  constructor(keys, trustedCheckpoint) {
    this.keys = keys.split('\n').filter(Boolean).map((k) => JSON.parse(parseVerifierKey(k)));
    if (trustedCheckpoint !== undefined && !trustedCheckpoint.includes('checkpoint')) throw new Error('trusted checkpoint: not a checkpoint');
    this.pending = [];
    this.carry = new Uint8Array(0);
    this.offset = 0;
    this.line = 0;
    this.entries = [];
    this.failures = [];
    this.checkpoints = [];
    this.bytes = 0;
    this.first = null;
    this.last = null;
  }
  push(chunk) {
    this.bytes += chunk.length;
    const buf = new Uint8Array(this.carry.length + chunk.length);
    buf.set(this.carry);
    buf.set(chunk, this.carry.length);
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      if (buf[i] === 10) {
        this._line(buf.subarray(start, i));
        start = i + 1;
      }
    }
    this.carry = buf.slice(start);
  }
  _line(bytes) {
    this.line++;
    const off = this.offset;
    this.offset += bytes.length + 1;
    const text = dec.decode(bytes);
    let ev;
    try {
      ev = JSON.parse(text);
    } catch {
      this.failures.push({ code: 'bad_json', entry: null, line: this.line, offset: off, expected: null, found: null, message: `line ${this.line}: not JSON` });
      return;
    }
    if (ev.type === 'checkpoint') {
      this.checkpoints.push({ size: this.entries.length, root: 'AAAA', line: this.line, trusted: false, status: 'unchecked' });
      return;
    }
    const e = ev.event || ev;
    const row = { seq: typeof ev.seq === 'number' ? ev.seq : null, ts: trunc(ev.ts), type: trunc(e.type), actor: trunc(e.actor), action: trunc(e.action), target: trunc(e.target), outcome: trunc(e.outcome), line: this.line, offset: off, length: bytes.length };
    this.pending.push(row);
    this.entries.push(1);
    if (!this.first) this.first = row;
    this.last = row;
    if (text.includes('TAMPERED')) {
      this.failures.push({ code: 'prev_mismatch', entry: row.seq, line: this.line, offset: off, expected: '9f86d081', found: '4c2a9e11', message: `entry ${row.seq}: prev is 9f86…, but entry ${row.seq - 1} hashes to 4c2a…` });
    }
  }
  // Columnar, as the real module's takeBatch (strings interned across batches).
  takeBatch() {
    const p = this.pending;
    this.pending = [];
    const cols = ['type', 'actor', 'action', 'target', 'outcome'];
    this.dicts ??= cols.map(() => new Map());
    const num = (f) => Float64Array.from(p, (r) => (typeof r[f] === 'number' ? r[f] : NaN));
    const fresh = cols.map(() => []);
    const codes = cols.map((c, k) =>
      Uint32Array.from(p, (r) => {
        if (r[c] == null) return 0;
        const d = this.dicts[k];
        if (!d.has(r[c])) {
          d.set(r[c], d.size + 1);
          fresh[k].push(r[c]);
        }
        return d.get(r[c]);
      }),
    );
    const ts = Float64Array.from(p, (r) => (r.ts == null ? NaN : Date.parse(r.ts) * 1000));
    const tsRaw = p.flatMap((r, i) => (r.ts == null ? [] : [i, r.ts])); // the mock's ts is any text
    return { n: p.length, seq: num('seq'), ts, line: num('line'), offset: num('offset'), length: num('length'), codes, fresh, tsRaw };
  }
  finish() {
    if (this.carry.length) this._line(this.carry);
    const good = this.keys.some((k) => k.name === 'good');
    const verdict = this.failures.length ? 'failed' : good ? 'verified' : 'unverified';
    const notices = good ? [] : [{ code: 'no_trusted_checkpoint', message: 'no checkpoint is signed by a trusted key' }];
    return JSON.stringify({
      verdict, kind: 'log', origin: 'example.com/audit', key_id: good ? this.keys[0].key_id : null, key_name: good ? 'good' : null,
      entries: this.entries.length, first_seq: this.first?.seq ?? null, last_seq: this.last?.seq ?? null, first_ts: this.first?.ts ?? null, last_ts: this.last?.ts ?? null,
      tree_size: this.entries.length, root: 'q1bX3m0p8kq7yJ4n1r3s5t7v9x1z3B5D7F9H1J3L5N0=',
      checkpoints: this.checkpoints.map((c) => ({ ...c, trusted: good, status: good ? 'ok' : 'untrusted' })), checkpoints_total: this.checkpoints.length,
      failures: this.failures.slice(0, 100), failures_total: this.failures.length, notices, bytes: this.bytes,
    });
  }
  free() {}
}
