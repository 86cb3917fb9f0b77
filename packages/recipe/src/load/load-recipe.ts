import { RecipeDiagnostic } from '../errors.js';
import { builtinRecipePath, listBuiltinRecipes } from './builtin-recipes.js';
import { closestMatch } from './did-you-mean.js';
import { isPathLike, readRecipeFile, type RecipeOptions, type RecipeResult } from './parse-recipe.js';

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
  return readRecipeFile(path, { ...options, source: options.source ?? `builtin:${nameOrPath}` });
}
