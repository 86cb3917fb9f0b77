// Writes schema/recipe.schema.json from the zod schema. Run by the package build; the recipe-schema
// test fails when the committed file differs from what this writes.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recipeJsonSchemaText } from '../src/schema/json-schema.js';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'recipe.schema.json');
writeFileSync(target, recipeJsonSchemaText());
process.stdout.write(`wrote ${target}\n`);
