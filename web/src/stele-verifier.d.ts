export { SteleVerifierElement } from './index.js';
