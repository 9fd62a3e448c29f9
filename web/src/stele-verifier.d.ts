// Types for @stele/verifier/element (src/stele-verifier.js): the <stele-verifier> custom element.
import type { Report } from './index.js';

/**
 * <stele-verifier keys="name+hex8+base64" src="URL" wasm="URL">: a compact verdict.
 * Events: stele-progress {done, total}, stele-report {report}, stele-error {message}.
 */
export declare class SteleVerifierElement extends HTMLElement {
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
