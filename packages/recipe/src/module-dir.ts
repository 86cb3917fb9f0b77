import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of this file: src/ in the source tree (run by tsx), dist/ in the build, where tsup
 * puts every module in one file. import.meta.url in ESM; __dirname in the CommonJS build, where
 * import.meta is empty. Callers walk up from it to the package's own folders.
 */
export function moduleDir(): string {
  const url = (import.meta as { url?: string }).url;
  if (typeof url === 'string' && url !== '') return dirname(fileURLToPath(url));
  return typeof __dirname === 'string' ? __dirname : process.cwd();
}
