// writeElfFile and writeFileAtomic: a temporary file in the output's directory, fsynced, given the input's mode bits
// and renamed into place; the input is never changed, and nothing is left behind on failure.
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { ElfError, readElf, verifyElf, writeElf, writeElfFile, writeFileAtomic, writeFileAtomicSync } from '../src/index.js';
import { jumpEdit, run, removeTempDirs, tempDir } from './write-support.js';

const test = suite('writeElfFile');
let fx: Fixtures;

test.before(async () => {
  fx = await buildFixtures();
});

async function failCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, ElfError);
    return (e as ElfError).code;
  }
  throw new Error('expected an ElfError');
}

test('writes the same bytes as writeElf, keeps the mode bits, leaves the input and no temp file', async () => {
  const dir = tempDir();
  const input = join(dir, 'prog');
  copyFileSync(fx.pie, input);
  chmodSync(input, 0o750);
  const before = readFileSync(input);
  const mtime = statSync(input).mtimeMs;
  const output = join(dir, 'prog.libos');
  const elf = await writeElfFile(input, output, (e) => jumpEdit(e).edit);
  assert.is(statSync(output).mode & 0o7777, 0o750);
  assert.ok(readFileSync(input).equals(before), 'input bytes unchanged');
  assert.is(statSync(input).mtimeMs, mtime, 'input not rewritten');
  assert.equal(readdirSync(dir).sort(), ['prog', 'prog.libos']);
  const expected = writeElf(readElf(before), jumpEdit(readElf(before)).edit);
  assert.ok(readFileSync(output).equals(expected), 'same bytes as writeElf');
  assert.is(elf.kind, 'pie');
  assert.is(verifyElf(readFileSync(output)).ok, true);
  const ran = await run(output, []);
  assert.is(ran.status, 42);
});

test('replaces an existing output atomically (a new inode, renamed over it)', async () => {
  const dir = tempDir();
  const output = join(dir, 'out');
  writeFileSync(output, 'old contents');
  const oldInode = statSync(output).ino;
  const edit = jumpEdit(readElf(readFileSync(fx.static))).edit;
  await writeElfFile(fx.static, output, edit);
  assert.is.not(statSync(output).ino, oldInode);
  assert.is(verifyElf(readFileSync(output)).ok, true);
  assert.equal(readdirSync(dir), ['out']);
});

test('refuses to write over the input, also through a symlink (ELF_SAME_FILE)', async () => {
  const dir = tempDir();
  const input = join(dir, 'prog');
  copyFileSync(fx.pie, input);
  symlinkSync(input, join(dir, 'alias'));
  const before = readFileSync(input);
  assert.is(await failCode(writeElfFile(input, input, (e) => jumpEdit(e).edit)), 'ELF_SAME_FILE');
  assert.is(await failCode(writeElfFile(input, join(dir, 'alias'), (e) => jumpEdit(e).edit)), 'ELF_SAME_FILE');
  assert.ok(readFileSync(input).equals(before));
});

test('a refused edit creates no output and leaves no temporary file', async () => {
  const dir = tempDir();
  const output = join(dir, 'out');
  const code = await failCode(writeElfFile(fx.pie, output, { patches: [{ offset: 1 << 30, bytes: new Uint8Array(1) }], segments: [] }));
  assert.is(code, 'ELF_PATCH_OUT_OF_FILE');
  assert.equal(readdirSync(dir), []);
});

test('a failed rename removes the temporary file', async () => {
  const dir = tempDir();
  const output = join(dir, 'busy');
  mkdirSync(join(output, 'inside'), { recursive: true });
  let failed = false;
  await writeElfFile(fx.pie, output, (e) => jumpEdit(e).edit).catch((e: NodeJS.ErrnoException) => {
    failed = e.code === 'EISDIR' || e.code === 'ENOTEMPTY';
  });
  assert.ok(failed, 'rename over a directory fails');
  assert.equal(readdirSync(dir), ['busy']);
});

// Both writers, the same promises: the async one and the blocking one the command line uses.
const WRITERS = [
  ['writeFileAtomic', writeFileAtomic],
  ['writeFileAtomicSync', async (...args: Parameters<typeof writeFileAtomicSync>) => writeFileAtomicSync(...args)],
] as const;

for (const [name, write] of WRITERS) {
  test(`${name}: text or bytes, exactly the mode given (0o644 by default, whatever the umask)`, async () => {
    const dir = tempDir();
    const old = process.umask(0o077);
    try {
      await write(join(dir, 'plan.json'), '{}\n');
      await write(join(dir, 'prog'), new Uint8Array([1, 2, 3]), { mode: 0o755 });
    } finally {
      process.umask(old);
    }
    assert.is(readFileSync(join(dir, 'plan.json'), 'utf8'), '{}\n');
    assert.is(statSync(join(dir, 'plan.json')).mode & 0o7777, 0o644);
    assert.equal([...readFileSync(join(dir, 'prog'))], [1, 2, 3]);
    assert.is(statSync(join(dir, 'prog')).mode & 0o7777, 0o755);
    assert.equal(readdirSync(dir).sort(), ['plan.json', 'prog']);
  });

  test(`${name}: refuses the input (also through a symlink); a missing folder is ENOENT; a failed rename leaves nothing`, async () => {
    const dir = tempDir();
    const input = join(dir, 'in');
    writeFileSync(input, 'original');
    symlinkSync(input, join(dir, 'alias'));
    assert.is(await failCode(write(join(dir, 'alias'), 'x', { inputPath: input })), 'ELF_SAME_FILE');
    assert.is(await failCode(write(input, 'x', { inputPath: join(dir, 'alias') })), 'ELF_SAME_FILE');
    assert.is(readFileSync(input, 'utf8'), 'original');
    let code: string | undefined;
    await write(join(dir, 'missing', 'out'), 'x').catch((e: NodeJS.ErrnoException) => { code = e.code; });
    assert.is(code, 'ENOENT');
    // A non-empty directory where the output goes: the rename fails, the temporary file is removed.
    mkdirSync(join(dir, 'busy', 'inside'), { recursive: true });
    code = undefined;
    await write(join(dir, 'busy'), 'x').catch((e: NodeJS.ErrnoException) => { code = e.code; });
    assert.ok(code === 'EISDIR' || code === 'ENOTEMPTY', String(code));
    assert.equal(readdirSync(dir).sort(), ['alias', 'busy', 'in']);
  });
}

test.after(removeTempDirs);

test.run();
