// The counter variant: each trampoline increments a 64-bit counter in a new RW segment before
// its syscall. gdb reads the counter when the program calls exit_group, and the count must equal
// the number of times the original program passed through an annotated site (counted by gdb
// dprintf breakpoints on the original's sites): the trampolines really run, once per syscall.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { readElf, writeElf } from '../src/index.js';
import { jumpEdit, load, run, removeTempDirs, tempDir, writeExecutable } from './write-support.js';

const test = suite('writeElf: trampolines with a counter in a new RW segment');
let fx: Fixtures;
let dir: string;

test.before(async () => {
  fx = await buildFixtures();
  dir = tempDir();
});

/** How many times the original executes an annotated site, from gdb dprintf on each site. */
async function siteHits(path: string, sites: bigint[]): Promise<number> {
  const args = ['-nx', '-batch'];
  for (const s of sites) args.push('-ex', `dprintf *0x${s.toString(16)},"libos-site-hit\\n"`);
  args.push('-ex', 'run', path);
  const g = await run('gdb', args);
  return g.stdout.split('\n').filter((l) => l === 'libos-site-hit').length;
}

// Position-dependent fixtures: their site addresses are the run-time addresses for dprintf.
for (const name of ['nonPie', 'static'] as const) {
  test(`${name}: the counter at exit_group equals the site executions of the original`, async () => {
    const { elf } = load(fx[name]);
    const j = jumpEdit(elf, { counter: true });
    const bytes = writeElf(elf, j.edit);
    const out = writeExecutable(dir, `${name}.counter`, bytes);

    const before = await run(fx[name], []);
    const after = await run(out, []);
    assert.is(after.stdout, before.stdout);
    assert.is(after.status, before.status);

    const expected = await siteHits(fx[name], j.sites);
    // 7 lines written plus exit_group, at least: the fixture makes every syscall through a site.
    assert.ok(expected >= 8, `the original passes sites ${expected} times`);
    const g = await run('gdb', ['-nx', '-batch', '-ex', 'catch syscall exit_group', '-ex', 'run', '-ex', 'printf "libos-counter=%d\\n", *(long *)&libos_counter', out]);
    const m = /libos-counter=(\d+)/.exec(g.stdout);
    assert.ok(m !== null, `gdb printed the counter: ${g.stdout}\n${g.stderr}`);
    assert.is(Number(m![1]), expected);

    const readelf = await run('readelf', ['-a', '-W', out]);
    assert.is(readelf.stderr, '');
    assert.match(readelf.stdout, /OBJECT +GLOBAL +DEFAULT +\d+ libos_counter/);
    const objdump = await run('objdump', ['-d', out]);
    assert.is(objdump.stderr, '');
    assert.match(objdump.stdout, /incq +0x[0-9a-f]+\(%rip\) +# [0-9a-f]+ <libos_counter>/, 'objdump names the counter the trampolines increment');

    // The counter lives in the RW segment's PROGBITS bytes, the rest of the 64 bytes is NOBITS.
    const re = readElf(bytes);
    const data = re.section('.libos.data');
    const tail = re.section('.libos.data.bss');
    assert.ok(data !== undefined && tail !== undefined);
    assert.is(data!.va, j.data!.va);
    assert.is(data!.size + tail!.size, 64);
    const text = re.section('.libos.text');
    assert.ok(data!.va >= text!.va + BigInt(text!.size) && data!.va % 0x1000n === 0n, 'data on pages of its own, after the code');
  });
}

test.after(removeTempDirs);

test.run();
