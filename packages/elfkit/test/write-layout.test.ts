// Layout corner cases on programs compiled here: a .bss so large that the program header table
// cannot share the first PT_LOAD's va - offset delta (the fallback placement), and PT_LOADs
// aligned to 2 MiB. Each is rewritten with the per-site trampolines and run.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PT_LOAD, PT_PHDR, readElf, revertElf, writeElf } from '../src/index.js';
import { jumpEdit, load, run, removeTempDirs, tempDir, writeExecutable } from './write-support.js';

const test = suite('writeElf: layout corner cases');
const include = fileURLToPath(new URL('../../../fixtures/include', import.meta.url));
let dir: string;
let source: string;

const BIG_BSS = 64 << 20;

test.before(() => {
  dir = tempDir();
  source = join(dir, 'big.c');
  writeFileSync(source, `#include <sys/syscall.h>
#include "syscall-inst.h"
static char big[${BIG_BSS}];
int main(void)
{
    big[0] = 1;
    big[sizeof big - 1] = 2;
    libos_sc3(SYS_write, 1, (long)"big ok\\n", 7);
    return big[0] + big[sizeof big - 1];
}
`);
});

async function compile(name: string, flags: string[]): Promise<string> {
  const out = join(dir, name);
  const cc = await run('gcc', ['-O2', '-I', include, ...flags, source, '-o', out]);
  assert.is(cc.status, 0, cc.stderr);
  return out;
}

async function rewriteAndRun(path: string, name: string): Promise<ReturnType<typeof readElf>> {
  const { elf, input } = load(path);
  const bytes = writeElf(elf, jumpEdit(elf).edit);
  const out = writeExecutable(dir, `${name}.out`, bytes);
  const before = await run(path, []);
  const after = await run(out, []);
  assert.is(before.stdout, 'big ok\n');
  assert.is(after.stdout, before.stdout);
  assert.is(after.status, 3);
  assert.ok(Buffer.from(revertElf(bytes)).equals(input));
  return readElf(bytes);
}

for (const [name, flags] of [['nonpie', ['-no-pie']], ['pie', ['-fPIE', '-pie']], ['static', ['-static']]] as const) {
  test(`${name}, 64 MiB .bss: the table goes on the first free page, not 64 MiB into the file`, async () => {
    const path = await compile(`big-${name}`, [...flags]);
    const out = await rewriteAndRun(path, `big-${name}`);
    const holder = out.segments.find((s) => s.type === PT_LOAD && s.offset === out.header.phoff)!;
    assert.ok(holder !== undefined, 'the table starts its own PT_LOAD');
    assert.is(holder.va % 0x1000n, 0n);
    assert.ok(out.bytes.length < BIG_BSS / 8, `the file stays small (${out.bytes.length} bytes)`);
    const phdr = out.segments.find((s) => s.type === PT_PHDR);
    if (phdr !== undefined) assert.is(phdr.va, holder.va);
  });
}

for (const [name, flags] of [['pie', ['-fPIE', '-pie']], ['nonpie', ['-no-pie']]] as const) {
  test(`${name}, small .bss: the table's va - offset equals the first PT_LOAD's (older kernels' AT_PHDR rule)`, async () => {
    const small = join(dir, 'small.c');
    writeFileSync(small, `#include <sys/syscall.h>
#include "syscall-inst.h"
int main(void) { libos_sc3(SYS_write, 1, (long)"big ok\\n", 7); return 3; }
`);
    const out = join(dir, `small-${name}`);
    assert.is((await run('gcc', ['-O2', '-I', include, ...flags, small, '-o', out])).status, 0);
    const rewritten = await rewriteAndRun(out, `small-${name}`);
    const loads = rewritten.segments.filter((s) => s.type === PT_LOAD);
    const holder = loads.find((s) => s.offset === rewritten.header.phoff)!;
    assert.is(holder.va - BigInt(holder.offset), loads[0]!.va - BigInt(loads[0]!.offset));
  });
}

test('PT_LOADs aligned to 2 MiB (-z max-page-size=0x200000) keep their alignment; the new ones use 4 KiB', async () => {
  const path = await compile('align2m', ['-fPIE', '-pie', '-Wl,-z,max-page-size=0x200000']);
  const original = load(path).elf.segments.filter((s) => s.type === PT_LOAD);
  assert.ok(original.every((s) => s.align === 0x200000), 'the linker made 2 MiB-aligned segments');
  const out = await rewriteAndRun(path, 'align2m');
  const loads = out.segments.filter((s) => s.type === PT_LOAD);
  assert.equal(loads.slice(0, original.length).map((s) => s.align), original.map((s) => s.align));
  assert.ok(loads.slice(original.length).every((s) => s.align === 0x1000));
});

test.after(removeTempDirs);

test.run();
