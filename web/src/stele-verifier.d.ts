// Types for @stele/verifier/element (src/stele-verifier.js): the <stele-verifier> custom element.
import type { Report } from './index.js';

/**
 * <stele-verifier keys="name+hex8+base64" src="URL" revoked="VKEY@SIZE …" wasm="URL">: a compact verdict.
 * Events: stele-progress {done, total}, stele-report {report}, stele-error {message}.
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
  /** Verifies a File or Blob with the element's `keys` attribute. */
  verify(file: Blob): Promise<Report>;
  /** The last report, or null. */
  readonly report: Report | null;
}

declare global {
  interface HTMLElementTagNameMap {
    'stele-verifier': SteleVerifierElement;
  }
}
