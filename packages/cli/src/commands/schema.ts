import { generateRecipeJsonSchema } from '@libos/recipe';
import type { Command } from '../command.js';
import { toJson } from '../report.js';

/** `libos-patch schema`: the recipes' JSON Schema, for editors and validators. */
export const schemaCommand: Command = {
  name: 'schema',
  summary: 'print the JSON Schema of recipe files',
  usage: 'schema [--json]',
  details: 'Point your editor\'s YAML language server at it to get completion and checks in recipes.',
  options: {
    json: { type: 'boolean', help: 'accepted for symmetry: the schema is JSON already' },
  },
  operands: { min: 0, max: 0, names: 'no operands' },
  async run(ctx) {
    ctx.out.write(toJson(generateRecipeJsonSchema()));
    return 0;
  },
};
