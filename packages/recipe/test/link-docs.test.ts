// The handler documentation and the shipped header agree with the code.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HANDLER_CFLAGS, handlerIncludeDir, LINK_ERROR_CODES, syscallNumber } from '@libos/recipe';

const docs = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'handlers.md'), 'utf8');
const header = readFileSync(join(handlerIncludeDir(), 'libos-handler.h'), 'utf8');

test('docs/handlers.md gives every LINK_* code a table row', () => {
  const rows = docs.split('\n').filter((l) => l.startsWith('|'));
  const missing = LINK_ERROR_CODES.filter((code) => !rows.some((r) => r.startsWith(`| \`${code}\``)));
  assert.equal(missing, []);
});

test('docs/handlers.md and libos-handler.h show the exact compile flags', () => {
  const line = HANDLER_CFLAGS.filter((f) => f !== '-c').join(' ');
  assert.ok(docs.replace(/\s*\\\n\s*/g, ' ').includes(line), `docs: ${line}`);
  assert.ok(header.replace(/\s*\\\n\s*\*\s*/g, ' ').includes(line), `header: ${line}`);
});

test('the LIBOS_NR_* numbers of the header match the x86-64 syscall table', () => {
  const defines = [...header.matchAll(/^#define LIBOS_NR_(\w+) (\d+)$/gm)];
  assert.ok(defines.length > 40);
  const wrong = defines.filter(([, name, nr]) => syscallNumber(name ?? '') !== Number(nr)).map(([d]) => d);
  assert.equal(wrong, []);
});

test.run();
