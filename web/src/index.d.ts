// Types for @stele/verifier (src/verifier.js); the element's are in stele-verifier.d.ts.

/** A verifier key, as returned by parseVerifierKey. */
export interface VerifierKeyInfo {
  name: string;
  /** 8 hex digits. */
  key_id: string;
}

/** One entry as seen by the verifier. Event fields that are not strings come as their JSON text; all truncated to 200 characters. */
export interface EntrySummary {
  seq: number | null;
  /** RFC 3339 UTC, e.g. "2026-11-26T12:00:00.000000Z". */
  ts: string | null;
  /** ts as microseconds since the Unix epoch. */
  ts_us?: number | null;
  type: string | null;
  actor: string | null;
  action: string | null;
  target: string | null;
  outcome: string | null;
  /** 1-based line number. */
  line: number;
  /** Byte offset of the line in the file. */
  offset: number;
  /** Byte length of the line, without its newline. */
  length: number;
}

export interface CheckpointReport {
  size: number;
  root: string;
  line: number;
  trusted: boolean;
  status: 'ok' | 'mismatch' | 'untrusted' | 'unchecked';
  /** With a witness policy: the policy's witnesses whose cosignature on it verified. */
  witnesses?: string[];
}

/** With a witness policy (docs/FORMAT.md 14.4): the quorum and whether it was met. */
export interface QuorumReport {
  /** The quorum's name in the policy (`none`: no cosignature required). */
  name: string;
  met: boolean;
  /** Size of the checkpoint the verdict rests on; null when none is trusted. */
  size: number | null;
  /** The policy's witnesses that cosigned it. */
  cosigned_by: string[];
}

export interface Failure {
  code: string;
  entry: number | null;
  line: number;
  offset: number;
  expected: string | null;
  found: string | null;
  message: string;
  /** Entry indices (inclusive) when the failure is about a range of entries (then `entry` is null). */
  range?: { first: number; last: number } | null;
  /** Index in `failures` of the earlier failure this one follows from; null for a root cause. */
  cause?: number | null;
}

export interface Notice {
  code: string;
  message: string;
}

export interface Report {
  verdict: 'verified' | 'partial' | 'tampered' | 'unverified' | 'not_a_log';
  kind: 'log' | 'range' | 'entries' | 'tlog-proof';
  origin: string | null;
  key_id: string | null;
  key_name: string | null;
  entries: number;
  first_seq: number | null;
  last_seq: number | null;
  first_ts: string | null;
  last_ts: string | null;
  tree_size: number | null;
  root: string | null;
  /** With a `partial` verdict on a log or range export: the first entry no verified trusted checkpoint covers (can be below `tree_size`). */
  unsigned_from?: number;
  checkpoints: CheckpointReport[];
  checkpoints_total: number;
  failures: Failure[];
  /**
   * Always a list when present: every sealed value core listed, in entry
   * order (without an identity none is opened, and the list may be empty).
   * Core's counts are `sealed_counts`, never here.
   */
  sealed?: SealedValue[];
  /**
   * The counts of sealed values (docs/FORMAT.md 13.8), when the file has
   * sealed values or records and was read by the module that checks them:
   * with an identity, a witness policy, revoked keys, a TSA certificate, or
   * for a log that rotated its key.
   */
  sealed_counts?: SealedCounts;
  failures_total: number;
  notices: Notice[];
  bytes: number;
  /** What was checked; null when the caller gave nothing (the page fills name and time). */
  input?: ReportInput | null;
  /** Present when a witness policy was given. */
  quorum?: QuorumReport;
  /** The log's key history (docs/FORMAT.md 15.4); present when the file has a stele.key event. */
  keys?: KeyHistoryEntry[];
  /** Only when the file has timestamp records (docs/FORMAT.md section 16). */
  timestamps?: TimestampReport[];
}

/** One signing key of a log whose key was rotated (docs/FORMAT.md 15.4). */
export interface KeyHistoryEntry {
  /** The verifier key. */
  key: string;
  /** The entry naming it: 0 for the genesis key, else its stele.key event. */
  entry: number;
  /** The first tree size it signs. */
  from: number;
  /** The end of its range (excluded); null for the current key. */
  to: number | null;
  /** Whether its stele.key event is signed by the key it replaces (null: genesis, or not yet covered). */
  signed: boolean | null;
  /** Whether the verifier accepted it (pinned, or reached through signed rotations); a revoked key below `revoked_from` only. */
  trusted: boolean;
  /** The smallest tree size from which it is revoked (given, or inherited through a revoked key's hand-over); null when not revoked. */
  revoked_from: number | null;
}

export interface ReportInput {
  name: string | null;
  bytes: number;
  sha256: string | null;
  keys: string[];
  trusted_checkpoint: { size: number; root: string } | null;
  verifier: string;
  verified_at: string;
}

/**
 * Entry summaries in columnar form (used by the page to hold a million rows).
 * String columns are interned: codes[c][i] is 0 for null, else an index
 * (1-based) into the strings of column c sent so far; `fresh[c]` holds the
 * strings new in this batch, in code order. Column order: STRING_COLUMNS.
 */
export interface EntryBatch {
  n: number;
  seq: Float64Array;
  /** Microseconds since the epoch, NaN when absent or unparsable. */
  ts: Float64Array;
  line: Float64Array;
  offset: Float64Array;
  length: Float64Array;
  /** 0 = absent; 4294967295 = not kept (see VerifyFileOptions.keepValues): read it from the line. */
  codes: Uint32Array[];
  fresh: string[][];
  /** Flat pairs [rowInBatch, originalText] for timestamps that formatTs would not reproduce. */
  tsRaw: Array<number | string>;
}

export declare const STRING_COLUMNS: readonly ['type', 'actor', 'action', 'target', 'outcome'];
export declare function parseTs(ts: string | null): number;
export declare function formatTs(microseconds: number): string;

/** Loads the wasm verifier once (default: ../pkg/stele_wasm_bg.wasm next to this module). */
export declare function init(source?: string | URL | BufferSource | WebAssembly.Module): Promise<WebAssembly.Module>;

/** Parses a verifier key ("name+hex8+base64"); throws Error with the reason. Call init() first. */
export declare function parseVerifierKey(vkey: string): VerifierKeyInfo;

/**
 * The summaries core gives `lines` (entry bytes without `\n`) read as entry
 * lines, one per line: for values a batch did not keep (keepValues). `line`,
 * `offset` and `length` count in the lines given. Call init() first.
 */
export declare function summarizeLines(lines: Uint8Array[]): EntrySummary[];

export interface VerifierOptions {
  keys?: string[];
  trustedCheckpoint?: string;
  /**
   * A witness policy, the text of a C2SP tlog-policy file (docs/FORMAT.md 14):
   * the checkpoint must be cosigned by its quorum (else the failure
   * `quorum_not_met`); the report then has `quorum`, and each checkpoint
   * `witnesses`. Its `log` lines pin keys too. Like `identity`, it is
   * checked by a separate wasm module, loaded only then: verifyFile loads it
   * itself; a Verifier with a policy is made by `Verifier.create`, which
   * loads it (the constructor throws until it is loaded).
   */
  policy?: string;
}

/**
 * Incremental verifier on the current thread. Call init() first (or use
 * `Verifier.create`). Without a policy it does not follow key rotations
 * (docs/FORMAT.md 15): a log with a `stele.key` event gets the notice
 * `rotation_unchecked` and a verdict of at most `partial`; verifyFile
 * verifies such a file again with the sealed module, which does. With a
 * policy, that module reads every chunk too and its report is the result.
 */
export declare class Verifier {
  constructor(options?: VerifierOptions);
  /** Awaits init() and, with `policy`, loads the module that checks it; then constructs. */
  static create(options?: VerifierOptions): Promise<Verifier>;
  push(chunk: Uint8Array): void;
  takeEntries(): EntrySummary[];
  /** Ends the stream; the verifier cannot be used afterwards. */
  finish(): Report;
  free(): void;
}

export interface VerifyFileOptions extends VerifierOptions {
  onProgress?: (bytesDone: number, total: number) => void;
  onEntries?: (rows: EntrySummary[]) => void;
  onBatch?: (batch: EntryBatch) => void;
  /**
   * Instead of onBatch (the page's own store for big files): what changed in
   * the pages of rows kept by a PagedStore (web/src/store.js) after each
   * block. The delta's shape is the page's own, not part of the package's API.
   */
  onPages?: (delta: unknown) => void;
  /** Cancels: the promise rejects with a DOMException named AbortError and the worker is terminated. */
  signal?: AbortSignal;
  /** Bytes read per step, default 1 MiB. */
  chunkSize?: number;
  /** 'auto' (default) uses a Web Worker and falls back to the main thread when none can start. */
  engine?: 'auto' | 'worker' | 'main';
  /** Called once per file, before any progress: where it is verified. */
  onEngine?: (info: EngineInfo) => void;
  /**
   * For onBatch: each column keeps at most `values` distinct strings and
   * `bytes` bytes of them; a value first seen after that has the code
   * 4294967295 and is not sent (read it from the entry's line, bytes
   * offset..offset+length of the file). Default: every value is kept.
   * Bounds memory on logs with a unique value per entry. Ignored with onEntries.
   */
  keepValues?: { values: number; bytes: number };
  /**
   * The text of an auditor's age identity file (`AGE-SECRET-KEY-1…`). With it,
   * a separate wasm module (loaded only then) reads the file once more after
   * verifying it, opening sealed values and checking each against its
   * commitment; the report then has `sealed` and `sealed_counts`, and a wrong
   * opening is a failure. A malformed identity rejects with an Error naming
   * the line, never echoing the key. Stays in memory, never sent.
   */
  identity?: string;
  /**
   * With `identity` (and no `tsaCa`): false leaves the report's `sealed`
   * list empty (its `sealed_counts` and any failure as always), so that
   * memory does not grow with the values of a large file; the values are
   * not kept anywhere (the page opens those of the entries it shows again,
   * from the file). Listed all the same when the file's first entry is not
   * within its first 8 MiB. Default true: every value is listed.
   */
  sealedList?: boolean;
  /**
   * The CA certificate of the timestamp authorities trusted (docs/FORMAT.md
   * section 16): PEM text, or the bytes of a PEM or DER file. With it, a
   * separate wasm module (loaded only then) verifies the file again,
   * checking every RFC 3161 token; the report's `timestamps` then say, per
   * anchored checkpoint, when it existed and which TSA attests it. An
   * auditor key (`identity`), a witness `policy`, `revoked` and
   * `trustedCheckpoint` are applied there too (one report).
   */
  tsaCa?: string | Uint8Array;
  /**
   * Keys revoked from a tree size (docs/FORMAT.md 15.3), each `VKEY@SIZE`:
   * the verifier key, `@`, and the first tree size whose checkpoints it may
   * no longer sign. Such a signature is the failure `key_revoked`, and so is
   * one from that size by a key it handed over to, unless that key is in
   * `keys` (pin the successor the operator published). Applied by
   * the separate wasm module that follows key rotations (loaded only then;
   * the plain verifier takes no revocations). A malformed one rejects with an
   * Error naming it.
   */
  revoked?: string[];
}

/** One RFC 3161 timestamp record of an export (docs/FORMAT.md 16.5). */
export interface TimestampReport {
  /** The size of the checkpoint it is for. */
  size: number;
  /** The line of the `timestamp` record. */
  line: number;
  /** ok: checked against the TSA certificate given; failed: a failure names it; unchecked: none given. */
  status: 'ok' | 'failed' | 'unchecked';
  /** When ok: the token's genTime, YYYY-MM-DDTHH:MM:SSZ. */
  time: string | null;
  /** When ok: the TSA certificate's subject (RFC 4514). */
  tsa: string | null;
}

/** The counts of sealed values (docs/FORMAT.md 13.8); they add up to `values`. */
export interface SealedCounts {
  values: number;
  opened: number;
  sealed: number;
  forgotten: number;
  redacted: number;
}

/** One sealed value of an entry (docs/FORMAT.md section 13). */
export interface SealedValue {
  entry: number;
  /** JSON pointer of the field in the event, e.g. "/actor/email". */
  pointer: string;
  /** opened: decrypted and checked against its commitment; mismatch: a failure is in the report. */
  state: 'opened' | 'sealed' | 'forgotten' | 'redacted' | 'mismatch';
  /** The opened value's JSON text; null unless opened. */
  value: string | null;
}

/** Where a file is verified: in a Web Worker (with `helpers` helper workers) or on the main thread. */
export interface EngineInfo {
  engine: 'worker' | 'main';
  helpers: number;
}

/**
 * Verifies a File or Blob in a Web Worker, streaming it in chunks. With
 * `identity`, `policy` or `revoked`, or when the log rotated its key (notice
 * `rotation_unchecked` from the plain verifier), the report is that of the
 * lazily loaded sealed module (./sealed.js).
 */
export declare function verifyFile(file: Blob, options?: VerifyFileOptions): Promise<Report>;

/** Starts a worker ahead of time; resolves to false if workers are unavailable. */
export declare function prewarm(): Promise<boolean>;

/**
 * Replaces how the verifier worker is created (e.g. from a Blob URL, or a bundler's worker import).
 * `helperSource`: the helper worker's classic-script text, for workers that cannot load
 * prepare-worker.js by URL; without it the worker loads prepare-worker.js next to itself.
 */
export declare function setWorkerFactory(factory: () => Worker, options?: { helperSource?: string }): void;
