import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { generateRecipeJsonSchema, listBuiltinRecipes, recipeSchema } from '../src/index.js';
import { recipeJsonSchemaText } from '../src/schema/json-schema.js';
import { checkJsonSchema } from './json-schema-check.js';

const recipeJsonSchema = generateRecipeJsonSchema();

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
    const checked = recipeSchema().safeParse(data);
    assert.ok(checked.success, `${builtin.name}: ${checked.error?.message ?? ''}`);
    const withExtra = recipeSchema().safeParse({ ...(data as Json), colour: 'blue' });
    assert.is(withExtra.success, false);
    assert.is(withExtra.error?.issues[0]?.code, 'unrecognized_keys');
  }
});

test('the shipped JSON Schema accepts every built-in recipe as written', () => {
  const shipped = JSON.parse(readFileSync(schemaFile, 'utf8')) as Json;
  for (const builtin of listBuiltinRecipes()) {
    const data: unknown = parse(readFileSync(builtin.path, 'utf8'));
    assert.equal(checkJsonSchema(shipped, data), [], builtin.name);
  }
});

test('the shipped JSON Schema refuses what the loader refuses', () => {
  const shipped = JSON.parse(readFileSync(schemaFile, 'utf8')) as Json;
  const rule = { annotation: '.libos.instructions.syscall' };
  const cases: [unknown, string][] = [
    [{ name: 'x', match: [rule], colour: 'blue' }, '#: additionalProperties colour'],
    [{ name: 'x', match: [rule], abi: { flgs: 'preserve' } }, '#/abi: additionalProperties flgs'],
    [{ name: 'x', match: [rule], abi: { flags: 'clober' } }, '#/abi/flags: enum'],
    [{ name: 'x', match: [rule], stub: 3 }, '#/stub: type string'],
    [{ name: 'x' }, '#: anyOf'],
    [{ match: [rule] }, '#: required name'],
    [{ name: 'X', match: [rule] }, '#/name: pattern'],
    [{ name: 'x', match: [] }, '#/match: minItems'],
    [{ name: 'x', match: [{ padding: 3 }] }, '#/match/0: oneOf'],
    [{ name: 'x', match: [{ ...rule, padding: 3 }] }, '#/match/0: not'],
    [{ name: 'x', match: [{ instruction: 'syscall', syscalls: { include: ['getpidd'] } }] }, '#/match/0/syscalls/include/0: anyOf'],
    [{ name: 'x', match: [rule], entry: { symbol: 'a', pointer: 'b' } }, '#/entry: anyOf'],
    [{ name: 'x', match: [rule], native: ['fork'] }, '#/native/0: enum'],
  ];
  for (const [recipe, expected] of cases) {
    const errors = checkJsonSchema(shipped, recipe);
    assert.ok(errors.includes(expected), `${JSON.stringify(recipe)}: ${errors.join('; ')}`);
    assert.is(recipeSchema().safeParse(recipe).success && 'match' in (recipe as Json), false, JSON.stringify(recipe));
  }
  assert.equal(checkJsonSchema(shipped, { name: 'x', extends: 'glibc-rfc' }), []);
});

test.run();
