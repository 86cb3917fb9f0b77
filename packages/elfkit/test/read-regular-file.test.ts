// readRegularFile: the one way the tools read a file they were given. A device or a FIFO is
// refused before a byte is read (and the open does not wait on a FIFO without a writer); a
// directory is EISDIR; a regular file, or a link to one, comes back whole with its mode.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NOT_REGULAR, readRegularFile, writeElfFile } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'libos-read-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
}

test('a regular file and a link to one: the bytes and the mode', () => {
  writeFileSync(join(dir, 'plain'), 'hello');
  chmodSync(join(dir, 'plain'), 0o751);
  symlinkSync(join(dir, 'plain'), join(dir, 'link'));
  for (const name of ['plain', 'link']) {
    const r = readRegularFile(join(dir, name));
    assert.is(r.bytes.toString(), 'hello');
    assert.is(r.mode, 0o751);
  }
});

test('a device, a FIFO (with no writer: no wait) and a directory are refused unread', () => {
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  mkdirSync(join(dir, 'sub'));
  const started = Date.now();
  assert.is(codeOf(() => readRegularFile('/dev/zero')), 'ENOTREG');
  assert.is(codeOf(() => readRegularFile(join(dir, 'fifo'))), 'ENOTREG');
  assert.ok(Date.now() - started < 5000);
  assert.throws(() => readRegularFile('/dev/null'), (e: Error) => e.message === NOT_REGULAR);
  assert.is(codeOf(() => readRegularFile(join(dir, 'sub'))), 'EISDIR');
  assert.is(codeOf(() => readRegularFile(join(dir, 'missing'))), 'ENOENT');
});

test('writeElfFile reads its input the same way: /dev/zero is refused, nothing written', async () => {
  try {
    await writeElfFile('/dev/zero', join(dir, 'out'), { patches: [], segments: [] });
    assert.unreachable('read /dev/zero');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ENOTREG');
  }
  assert.is(codeOf(() => readRegularFile(join(dir, 'out'))), 'ENOENT');
});

test.run();
