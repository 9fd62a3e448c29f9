// Types for @stele/verifier/element (src/stele-verifier.js): the <stele-verifier> custom element.
import type { Report } from './index.js';

/** What the element shows: `state`. */
export type SteleVerifierState = 'idle' | 'working' | 'verified' | 'partial' | 'tampered' | 'unverified' | 'not_a_log' | 'error';

/** `detail` of a `stele-progress` event: bytes verified of the total. */
export interface SteleProgressDetail {
  done: number;
  total: number;
}

/** `detail` of a `stele-report` event. */
export interface SteleReportDetail {
  report: Report;
}

/** Why the element could not verify (`stele-error`). */
export type SteleErrorCode = 'fetch_failed' | 'bad_key' | 'wasm_failed' | 'verify_failed';

/** `detail` of a `stele-error` event. */
export interface SteleErrorDetail {
  code: SteleErrorCode;
  message: string;
}

/**
 * <stele-verifier keys="name+hex8+base64" src="URL" revoked="VKEY@SIZE …" wasm="URL">: a compact verdict.
 * Events (bubbling, composed): stele-progress {done, total}, stele-report {report}, stele-error {code, message}.
 */
export declare class SteleVerifierElement extends HTMLElement {
  /** Verifier keys, whitespace-separated (the attribute); set a string or an array. */
  get keys(): string;
  set keys(v: string | string[]);
  /**
   * Keys revoked from a tree size (docs/FORMAT.md 15.3), each `VKEY@SIZE`,
   * whitespace-separated (the attribute); set a string or an array.
   */
  get revoked(): string;
  set revoked(v: string | string[]);
  /** URL of the export to verify (the attribute); '' removes it. */
  get src(): string;
  set src(v: string | null);
  /**
   * URL of stele_wasm_bg.wasm (the attribute); '' removes it. The wasm is
   * loaded once per page: this URL counts only when it is the page's first
   * init() (this element's first run, before anything else in the page
   * loaded the verifier); later it is ignored.
   */
  get wasm(): string;
  set wasm(v: string | null);
  /** Verifies a File or Blob with the element's `keys` attribute. */
  verify(file: Blob): Promise<Report>;
  /** The last report, or null. */
  readonly report: Report | null;
  /** What the element shows. */
  readonly state: SteleVerifierState;
}

declare global {
  interface HTMLElementTagNameMap {
    'stele-verifier': SteleVerifierElement;
  }
  // The element's events bubble and are composed: they reach the document too.
  interface HTMLElementEventMap {
    'stele-progress': CustomEvent<SteleProgressDetail>;
    'stele-report': CustomEvent<SteleReportDetail>;
    'stele-error': CustomEvent<SteleErrorDetail>;
  }
  interface DocumentEventMap {
    'stele-progress': CustomEvent<SteleProgressDetail>;
    'stele-report': CustomEvent<SteleReportDetail>;
    'stele-error': CustomEvent<SteleErrorDetail>;
  }
}
