export * from './model.js';
export * from './export.js';
export * from './vector-index.js';
export * from './server.js';
export { PAGE_HTML, pageHtml } from './page.js';
export * from './site.js';
export * from './images.js';
export * from './measure.js';
export * from './quantize.js';
