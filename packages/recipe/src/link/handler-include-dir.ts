/** Where the package's `libos-handler.h` lives, from the source tree or the built package. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { moduleDir } from '../module-dir.js';

const HEADER = 'libos-handler.h';

function findIncludeDir(): string {
  // src/link/ in the source tree, dist/ in the built package: walk up to the package root.
  let dir = moduleDir();
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'include');
    if (existsSync(join(candidate, HEADER))) return candidate;
    dir = dirname(dir);
  }
  return join(moduleDir(), '..', '..', 'include');
}

let found: string | undefined;

/**
 * The directory holding `libos-handler.h`; `compileHandler` passes it as `-I`. Looked for on the
 * first call (a few file checks), not when the package is loaded.
 */
export function handlerIncludeDir(): string {
  found ??= findIncludeDir();
  return found;
}
