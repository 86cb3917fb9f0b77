import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { moduleDir } from '../module-dir.js';
import { yamlModule } from '../lazy-modules.js';

/** One recipe shipped in the repository's `recipes/` folder. */
export interface BuiltinRecipe {
  name: string;
  description: string;
  /** Absolute path of the YAML file. */
  path: string;
}

/** How the loader finds built-in recipes. */
export interface BuiltinOptions {
  /** The folder of built-in recipes; by default the nearest `recipes/` above this module. */
  recipesDir?: string;
}

/** The file every built-in folder has; it tells `recipes/` of ours from any other folder of that name. */
const MARKER = 'glibc-rfc.yaml';

let cachedDir: string | undefined;

/**
 * The folder of built-in recipes: the nearest `recipes/` holding glibc-rfc.yaml, walking up from
 * this module. From the sources (packages/recipe/src/load) and from the build (packages/recipe/dist)
 * alike that is the repository's top-level `recipes/`.
 */
export function builtinRecipesDir(options: BuiltinOptions = {}): string | undefined {
  if (options.recipesDir !== undefined) return resolve(options.recipesDir);
  if (cachedDir !== undefined) return cachedDir;
  let dir = moduleDir();
  for (;;) {
    const candidate = join(dir, 'recipes');
    if (existsSync(join(candidate, MARKER))) {
      cachedDir = candidate;
      return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The path of built-in recipe `name`, or undefined when there is none. */
export function builtinRecipePath(name: string, options: BuiltinOptions = {}): string | undefined {
  const dir = builtinRecipesDir(options);
  if (dir === undefined || !/^[a-z0-9][a-z0-9-]*$/.test(name)) return undefined;
  const path = join(dir, `${name}.yaml`);
  return existsSync(path) ? path : undefined;
}

/** Every built-in recipe, by name, with the description it gives itself. */
export function listBuiltinRecipes(options: BuiltinOptions = {}): BuiltinRecipe[] {
  const dir = builtinRecipesDir(options);
  if (dir === undefined) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => {
      const path = join(dir, file);
      let description = '';
      try {
        const data: unknown = yamlModule().parse(readFileSync(path, 'utf8'));
        const value = (data as { description?: unknown } | null)?.description;
        if (typeof value === 'string') description = value;
      } catch {
        // A broken built-in still lists; loading it reports what is wrong.
      }
      return { name: file.slice(0, -'.yaml'.length), description, path };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
