/**
 * A small JSON Schema checker for the keywords the generated recipe schema uses, so the tests can
 * run the shipped schema itself over recipes (no validator is a dependency of this repository).
 * It throws on a keyword it does not know rather than silently passing it.
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default']);
const KNOWN = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'anyOf', 'oneOf', 'not',
  'if', 'then', 'minItems', 'minimum', 'maximum', 'minLength', 'pattern', 'minProperties', 'maxProperties',
]);

/** The places where `value` breaks `schema`, as `#/path: keyword` strings; empty when it conforms. */
export function checkJsonSchema(schema: Schema, value: unknown, at = '#'): string[] {
  const errors: string[] = [];
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !KNOWN.has(keyword)) throw new Error(`${at}: the checker does not know keyword '${keyword}'`);
  }
  const fail = (keyword: string): void => {
    errors.push(`${at}: ${keyword}`);
  };
  const type = schema.type as string | undefined;
  if (type !== undefined && !hasType(value, type)) return [`${at}: type ${type}`];
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) fail('enum');
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail('minimum');
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail('maximum');
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) fail('minLength');
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail('pattern');
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail('minItems');
    if (schema.items !== undefined) value.forEach((item, i) => errors.push(...checkJsonSchema(schema.items as Schema, item, `${at}/${i}`)));
  }
  if (isObject(value)) {
    const keys = Object.keys(value);
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in value)) fail(`required ${key}`);
    if (typeof schema.minProperties === 'number' && keys.length < schema.minProperties) fail('minProperties');
    if (typeof schema.maxProperties === 'number' && keys.length > schema.maxProperties) fail('maxProperties');
    for (const key of keys) {
      const property = properties[key];
      if (property) errors.push(...checkJsonSchema(property, value[key], `${at}/${key}`));
      else if (schema.additionalProperties === false) fail(`additionalProperties ${key}`);
    }
  }
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((branch) => checkJsonSchema(branch as Schema, value, at).length === 0)) fail('anyOf');
  if (Array.isArray(schema.oneOf) && schema.oneOf.filter((branch) => checkJsonSchema(branch as Schema, value, at).length === 0).length !== 1) fail('oneOf');
  if (schema.not !== undefined && checkJsonSchema(schema.not as Schema, value, at).length === 0) fail('not');
  if (schema.if !== undefined && checkJsonSchema(schema.if as Schema, value, at).length === 0 && schema.then !== undefined) {
    errors.push(...checkJsonSchema(schema.then as Schema, value, at));
  }
  return errors;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    default:
      throw new Error(`unknown type ${type}`);
  }
}
