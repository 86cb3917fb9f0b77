import { dirname, join } from 'node:path';
import { RecipeDiagnostic } from '../errors.js';
import type { Recipe } from '../model.js';
import { COMPILED_BUILTINS, COMPILED_TEXTS } from './builtin-compiled.js';
import { builtinRecipePath, listBuiltinRecipes } from './builtin-recipes.js';
import { closestMatch } from './did-you-mean.js';
import { isPathLike, readRecipeFile, readText, type RecipeOptions, type RecipeResult } from './parse-recipe.js';

/**
 * Load a recipe by built-in name (`glibc-rfc`) or by path (anything with a slash or a .yaml/.yml
 * ending), following its `extends` chain. A built-in records `source: builtin:<name>`, a file its path.
 */
export function loadRecipe(nameOrPath: string, options: RecipeOptions = {}): RecipeResult {
  if (isPathLike(nameOrPath)) return readRecipeFile(nameOrPath, options);
  const path = builtinRecipePath(nameOrPath, options);
  if (path === undefined) {
    const names = listBuiltinRecipes(options).map((recipe) => recipe.name);
    const suggestion = closestMatch(nameOrPath, names);
    const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
    const message = `no built-in recipe '${nameOrPath}'${hint}; built-in recipes: ${names.join(', ')} (give a path to load a file)`;
    return { errors: [new RecipeDiagnostic({ code: 'RECIPE_NOT_FOUND', file: nameOrPath, line: 0, col: 0, message })], warnings: [] };
  }
  const source = options.source ?? `builtin:${nameOrPath}`;
  // A caller that follows the files read gets them from the parser.
  const recipe = options.onRead === undefined ? compiledBuiltin(nameOrPath, dirname(path), source) : undefined;
  return recipe !== undefined ? { recipe, errors: [], warnings: [] } : readRecipeFile(path, { ...options, source });
}

/** A built-in recipe made at build time (scripts/write-builtins.ts). */
export interface CompiledBuiltin {
  /** The files it is made from (itself, then each recipe it extends), by name in its folder; their texts are in COMPILED_TEXTS. */
  readonly files: readonly string[];
  /** The Recipe, as JSON, with an empty `source`. */
  readonly recipe: string;
}

/**
 * Built-in recipe `name` from the table made at build time, while every file it was made from still
 * holds the same text in `dir`; undefined otherwise (the caller then parses the files). Same text,
 * same recipe: a built-in in the table depends on nothing else (no handler path, no address).
 */
export function compiledBuiltin(name: string, dir: string, source: string): Recipe | undefined {
  const compiled = COMPILED_BUILTINS.get(name);
  if (compiled === undefined) return undefined;
  for (const file of compiled.files) {
    const now = readText(join(dir, file));
    if (typeof now !== 'string' || now !== COMPILED_TEXTS.get(file)) return undefined;
  }
  // Parsed afresh at every call: no caller shares (or can change) another's recipe.
  const recipe = JSON.parse(compiled.recipe) as Recipe;
  recipe.source = source;
  return recipe;
}
