import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root } from './support.js';

/** The prefixes of error and diagnostic codes, one per stage. */
const CODE = /'((?:ELF|ENC|RECIPE|DISCOVER|ANALYZE|LINK|PLAN|CLI)_[A-Z0-9_]+)'/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

function codesInSources(): Map<string, string> {
  const codes = new Map<string, string>();
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    try {
      statSync(src);
    } catch {
      continue;
    }
    for (const file of sources(src)) {
      for (const match of readFileSync(file, 'utf8').matchAll(CODE)) {
        if (match[1] !== undefined && !codes.has(match[1])) codes.set(match[1], file.slice(root.length + 1));
      }
    }
  }
  return codes;
}

test('every code string literal in packages/*/src appears in docs/error-codes.md', () => {
  const doc = readFileSync(join(root, 'docs', 'error-codes.md'), 'utf8');
  const codes = codesInSources();
  assert.ok(codes.size > 50, `found ${codes.size} codes`);
  const missing = [...codes].filter(([code]) => !new RegExp(`\`${code}\``).test(doc)).map(([code, file]) => `${code} (${file})`);
  assert.equal(missing, [], `codes missing from docs/error-codes.md:\n${missing.join('\n')}`);
});

test('every code the CLI error type declares is in the doc with its exit status', () => {
  const doc = readFileSync(join(root, 'docs', 'error-codes.md'), 'utf8');
  const cli = readFileSync(join(root, 'packages', 'cli', 'src', 'errors.ts'), 'utf8');
  for (const [, code, status] of cli.matchAll(/^\s+(CLI_[A-Z_]+): EXIT\.(\w+),$/gm)) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} has a row`);
    const expected = { ok: '0', refused: '1', input: '2', internal: '3' }[status ?? ''];
    assert.ok(row?.includes(`| ${expected} |`), `${code}: exit ${expected} in ${row}`);
  }
});

test.run();
