// The shared fixture build: two processes building into an empty cache at once both succeed and
// leave one complete build, no temporary directories.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('fixtures build');
const buildModule = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'fixtures', 'build.ts');

function buildIn(cache: string): Promise<string> {
  const script = `import { buildFixtures } from ${JSON.stringify(buildModule)};
const f = await buildFixtures();
console.log(JSON.stringify({ dir: f.dir, n: f.list.length }));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, LIBOS_FIXTURES_CACHE: cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`build exited ${code}: ${err}`))));
  });
}

test('two concurrent builds into an empty cache agree and leave one directory', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'libos-fixtures-race-'));
  try {
    const [a, b] = await Promise.all([buildIn(cache), buildIn(cache)]);
    assert.is(a, b);
    const { dir, n } = JSON.parse(a) as { dir: string; n: number };
    assert.ok(dir.startsWith(cache));
    assert.ok(n >= 10);
    assert.equal(readdirSync(cache), [dir.slice(cache.length + 1)], 'no temporary directory left');
    assert.ok(readdirSync(dir).includes('manifest.json'));
    // A third build finds the cache and does not rebuild: the same directory, untouched.
    const before = statSync(join(dir, 'manifest.json'));
    assert.is(await buildIn(cache), a);
    const after = statSync(join(dir, 'manifest.json'));
    assert.is(after.ino, before.ino);
    assert.is(after.mtimeMs, before.mtimeMs);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test.run();
