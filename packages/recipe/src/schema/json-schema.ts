import { zodModule } from '../lazy-modules.js';
import { recipeSchema } from './recipe-schema.js';

/**
 * The JSON Schema of the recipe language (draft 2020-12), generated from the zod schema for the
 * input side: what may be written, with each default shown. Shipped as
 * `packages/recipe/schema/recipe.schema.json` so an editor validates a recipe that starts with
 * `# yaml-language-server: $schema=<path to it>`. Made when asked for, not when the package is
 * loaded: every command of the CLI would pay for it (2-3 ms), and only `schema` uses it.
 */
export function generateRecipeJsonSchema(): Record<string, unknown> {
  const generated = zodModule().z.toJSONSchema(recipeSchema(), { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  // zod cannot say "match unless extends": the loader checks it, and so does this clause for editors.
  return { ...generated, anyOf: [{ required: ['match'] }, { required: ['extends'] }] };
}

/** The schema file's exact text, as committed in `schema/recipe.schema.json`. */
export function recipeJsonSchemaText(): string {
  return `${JSON.stringify(generateRecipeJsonSchema(), null, 2)}\n`;
}
