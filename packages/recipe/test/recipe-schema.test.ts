import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { RecipeSchema, listBuiltinRecipes, recipeJsonSchema } from '../src/index.js';
import { recipeJsonSchemaText } from '../src/schema/json-schema.js';

const schemaFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'recipe.schema.json');

test('the committed schema/recipe.schema.json is the one the zod schema generates', () => {
  const committed = readFileSync(schemaFile, 'utf8');
  assert.is(committed, recipeJsonSchemaText(), 'run `npm run schema -w @libos/recipe` and commit the file');
  assert.equal(JSON.parse(committed), recipeJsonSchema);
});

type Json = Record<string, unknown>;

function property(schema: Json, ...keys: string[]): Json {
  let node = schema;
  for (const key of keys) {
    const properties = node.properties as Record<string, Json> | undefined;
    const next = properties?.[key] ?? (node.items as Json | undefined)?.properties?.[key as never];
    assert.ok(next, `schema has ${keys.join('.')}`);
    node = next as Json;
  }
  return node;
}

test('the JSON Schema is for the input side: kebab-case keys, defaults shown, unknown keys refused', () => {
  const schema = recipeJsonSchema as Json;
  assert.is(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.is(schema.additionalProperties, false);
  assert.equal(schema.required, ['name']);
  assert.equal(schema.anyOf, [{ required: ['match'] }, { required: ['extends'] }]);
  assert.equal(property(schema, 'abi', 'red-zone').default, 'preserve');
  assert.equal(property(schema, 'trampoline', 'prefer').default, ['rel32', 'rel32-site']);
  assert.equal(property(schema, 'native').default, ['rt_sigreturn', 'vfork', 'clone', 'clone3']);
  assert.equal(property(schema, 'stub').enum, ['fast', 'seed']);
  const rule = (property(schema, 'match').items ?? {}) as Json;
  assert.is(rule.additionalProperties, false);
  // Every map in the language refuses keys it does not know.
  const open: string[] = [];
  const visit = (node: unknown, where: string): void => {
    if (node === null || typeof node !== 'object') return;
    const json = node as Json;
    if (json.type === 'object' && json.additionalProperties !== false) open.push(where);
    for (const [key, value] of Object.entries(json)) visit(value, `${where}/${key}`);
  };
  visit(schema, '#');
  assert.equal(open, []);
});

test('the schema offers the syscall names for completion', () => {
  const include = property(recipeJsonSchema as Json, 'match', 'syscalls', 'include');
  const branches = ((include.items as Json).anyOf ?? []) as Json[];
  const names = branches.find((branch) => Array.isArray(branch.enum))?.enum as string[] | undefined;
  assert.ok(names?.includes('getppid'));
  assert.ok(names?.includes('clone3'));
});

test('the zod schema accepts the built-in recipes as written and refuses an unknown key', () => {
  for (const builtin of listBuiltinRecipes()) {
    const data: unknown = parse(readFileSync(builtin.path, 'utf8'));
    const checked = RecipeSchema.safeParse(data);
    assert.ok(checked.success, `${builtin.name}: ${checked.error?.message ?? ''}`);
    const withExtra = RecipeSchema.safeParse({ ...(data as Json), colour: 'blue' });
    assert.is(withExtra.success, false);
    assert.is(withExtra.error?.issues[0]?.code, 'unrecognized_keys');
  }
});

test.run();
