/**
 * @distill/pretrained: pretrained weights that ship inside this package as assets (nothing is
 * downloaded at run time), converted by tools/convert-pretrained from npm packages. PROVENANCE.md
 * lists each source (package, version, sha256, licence) and what was kept.
 */
export * from './glove.js';
export * from './mobilenet.js';
