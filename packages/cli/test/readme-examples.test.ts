/**
 * Each package's README opens with an example; it must run as written. The first ```ts block of
 * packages/{elfkit,encoder,recipe}/README.md is written next to the README and run through tsx,
 * resolving @libos/* to the sources like the tests do.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

for (const pkg of ['elfkit', 'encoder', 'recipe']) {
  test(`packages/${pkg}/README.md: its example runs`, () => {
    const readme = readFileSync(join(root, 'packages', pkg, 'README.md'), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(readme);
    assert.ok(block, 'the README has a ts example');
    const file = join(root, 'packages', pkg, `.readme-example-${process.pid}.mts`);
    writeFileSync(file, block[1]!);
    try {
      const r = spawnSync(process.execPath, ['--conditions=libos-source', '--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
      assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
      if (pkg === 'recipe') assert.match(r.stdout, /^(\d+) of \1 sites patched/m); // every decoded site of libc.so.6
    } finally {
      rmSync(file, { force: true });
    }
  });
}

test.run();
