import { createRequire } from 'node:module';

/**
 * iced-x86, loaded with `require`: it is CommonJS, and an ESM `import` of it makes Node scan its
 * 2 MB of JavaScript for named exports on every start (about 0.1 s of a one-shot rewrite).
 */
const iced = createRequire(import.meta.url)('iced-x86') as typeof import('iced-x86');
export default iced;
