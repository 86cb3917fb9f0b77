import { listBuiltinRecipes } from '@libos/recipe';
import { flag } from '../args.js';
import type { Command } from '../command.js';
import { formatTable, toJson } from '../report.js';

/** `libos-patch recipes`: the built-in recipes, one line each. */
export const recipesCommand: Command = {
  name: 'recipes',
  summary: 'list the built-in recipes',
  usage: 'recipes [--json]',
  details: 'Give a built-in recipe\'s name as R to --recipe, or a path to a recipe file of your own.',
  options: {
    json: { type: 'boolean', help: 'print { "recipes": [{ name, description, path }] } as JSON' },
  },
  operands: { min: 0, max: 0, names: 'no operands' },
  async run(ctx) {
    const recipes = listBuiltinRecipes();
    if (flag(ctx.args, 'json')) {
      ctx.out.write(toJson({ recipes }));
      return 0;
    }
    // One line each: a description is a paragraph in YAML, its first line is its summary.
    const rows = recipes.map((r) => [r.name, (r.description.split('\n')[0] ?? '').trim()]);
    ctx.out.write(formatTable(['NAME', 'DESCRIPTION'], rows, ctx.paint).split('\n').slice(1).join('\n'));
    return 0;
  },
};
