import { createRequire } from 'node:module';

/**
 * zod and yaml, loaded when first used. A built-in recipe comes compiled (load/builtin-compiled.ts),
 * so a rewrite with one never parses YAML nor builds the schema: evaluating the two packages and
 * building the schema were ~8 ms of every one-shot command. Required (both ship CommonJS) rather than
 * imported, as iced-x86 is (iced-module.ts): an ES module cannot load another synchronously on demand.
 * The CLI's bundle (packages/cli/scripts/bundle.ts) keeps the calls lazy.
 */
let zod: typeof import('zod') | undefined;
let yaml: typeof import('yaml') | undefined;

export function zodModule(): typeof import('zod') {
  return (zod ??= createRequire(import.meta.url)('zod') as typeof import('zod'));
}

export function yamlModule(): typeof import('yaml') {
  return (yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));
}
