// Displacement never moves an instruction something outside the function may reach: a symbol's
// address or a RELATIVE relocation's target. The site starts its function (no window may begin
// before it), so the instruction after it must move or the site gets no window.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assemble, fn, type Assembled } from './discover-asm.js';
import { planFile, vaHex } from './plan-helpers.js';
import { SortedAddresses } from '../src/compile/displace.js';

const body = (label: string) => `  syscall\n${label}\n  mov %rax, %rdi\n  mov %rdi, %rsi\n  ret`;

test('displace: the instruction after the site is moved, unless a symbol names it', async () => {
  const prog = assemble([
    fn('plain', body('')),
    fn('named', body('.globl named_mid\nnamed_mid:')),
    // A local label has no symbol in the linked file: it guards nothing.
    fn('local', body('.Llocal_mid:')),
  ].join('\n'));
  const { plan, report } = await planFile(prog.elf, 'unannotated');
  const siteAt = (name: string) => {
    const va = prog.sym(name);
    const index = report.sites.findIndex((s) => s.va === va);
    assert.ok(index >= 0, `a site at ${name}`);
    return plan.patches.find((p) => p.site === index);
  };
  assert.is(siteAt('plain')?.variant, 'displace');
  assert.is(siteAt('local')?.variant, 'displace');
  const named = siteAt('named');
  assert.is.not(named?.variant, 'displace');
  assert.match(named?.reason ?? '', `the instruction at ${vaHex(prog.sym('named_mid'))} is a symbol or relocation target`);
});

/** `unaimed` is displaced; `aimed`, whose second instruction a pointer in data names, is not, and says why. */
async function expectAimedKept(prog: Assembled): Promise<void> {
  const { plan, report } = await planFile(prog.elf, 'unannotated');
  const patchAt = (va: bigint) => plan.patches.find((p) => p.site === report.sites.findIndex((s) => s.va === va));
  assert.is(patchAt(prog.sym('unaimed'))?.variant, 'displace');
  const aimed = patchAt(prog.sym('aimed'));
  assert.is.not(aimed?.variant, 'displace');
  assert.match(aimed?.reason ?? '', `the instruction at ${vaHex(prog.sym('aimed') + 2n)} is a symbol or relocation target`);
}

test('displace: a RELATIVE relocation aimed inside the window guards it too (PIE)', async () => {
  const prog = assemble([
    fn('aimed', body('.Laimed_mid:')),
    fn('unaimed', body('')),
    '.section .data.rel.ro,"aw"\n.quad .Laimed_mid\n',
  ].join('\n'), ['-static-pie', '-fPIE']);
  const rel = prog.elf.relocations.filter((r) => r.kind === 'rela' && r.type === 8);
  assert.ok(rel.some((r) => r.addend === prog.sym('aimed') + 2n), 'the pointer is a RELATIVE relocation');
  await expectAimedKept(prog);
});

test('displace: a packed RELR relocation aimed inside the window guards it too (PIE with -z pack-relative-relocs)', async () => {
  // Linked with libc: ld packs relative relocations only against a glibc that can apply them.
  const prog = assemble([
    '.text\n.globl main\n.type main,@function\nmain:\n  xor %eax, %eax\n  ret\n.size main,.-main',
    fn('aimed', body('.Laimed_mid:')),
    fn('unaimed', body('')),
    // A table of label addresses, as a computed goto's: RELR packs aligned words.
    '.section .data.rel.ro,"aw"\n.balign 8\n.quad .Laimed_mid\n.quad .Laimed_mid\n',
  ].join('\n'), ['-pie', '-fPIE', '-Wl,-z,pack-relative-relocs'], { libc: true });
  const relr = prog.elf.relocations.filter((r) => r.kind === 'relr');
  assert.ok(relr.some((r) => r.addend === prog.sym('aimed') + 2n), 'the pointer is a RELR relocation');
  assert.not.ok(prog.elf.relocations.some((r) => r.kind === 'rela' && r.addend === prog.sym('aimed') + 2n), 'and not a RELA one');
  await expectAimedKept(prog);
});

/**
 * Function `name`: `load`, then for rdi <= 1 `jump` (through `name`_tbl), else its system call;
 * `target` labels the instruction after the call, the one a window would move.
 */
function dispatchThrough(name: string, target: string, load: string[], jump: string[]): string {
  return fn(name, [...load, '  cmp $1, %rdi', '  ja 1f', ...jump, '1:', '  syscall', `${target}:`, '  mov %rax, %rdi', '  mov %rdi, %rsi', '  ret'].join('\n'));
}

/** The patch of the site in function `name` of an unannotated plan of `prog`. */
async function patchesByFunction(prog: Assembled): Promise<(name: string) => Awaited<ReturnType<typeof planFile>>['plan']['patches'][number] | undefined> {
  const { plan, report } = await planFile(prog.elf, 'unannotated');
  return (name) => {
    const index = report.sites.findIndex((s) => s.symbol === name);
    assert.ok(index >= 0, `a site in ${name}`);
    return plan.patches.find((p) => p.site === index);
  };
}

test('displace: a label a computed goto reaches through a table of addresses loaded with mov stays in place (non-PIE)', async () => {
  // `goto *tbl[i]` in a non-PIE program: `mov tbl(,%rdi,8), %rax; jmp *%rax`, the table's 64-bit
  // addresses fixed at link time, no relocation left to guard them.
  const dispatch = (name: string, target: string) => dispatchThrough(name, target, [], [`  mov ${name}_tbl(,%rdi,8), %rax`, '  jmp *%rax']);
  const prog = assemble([
    dispatch('aimed', '.Laimed_mid'),
    dispatch('unaimed', '.Lunaimed_mid'),
    '.section .rodata\n.balign 8\naimed_tbl:\n.quad .Laimed_mid\n.quad .Laimed_mid\nunaimed_tbl:\n.quad unaimed\n.quad unaimed\n',
  ].join('\n'));
  const patchAt = await patchesByFunction(prog);
  assert.is(patchAt('unaimed')?.variant, 'displace');
  const aimed = patchAt('aimed');
  assert.is.not(aimed?.variant, 'displace');
  assert.match(aimed?.reason ?? '', /may be a jump-table target/);
});

test('displace: a table whose address is loaded into a register elsewhere in the function keeps its targets in place (non-PIE)', async () => {
  // A dispatch loop keeps the table's address in a register (`mov $tbl, %edx` hoisted out of the
  // loop, then `jmp *(%rdx,%rax,8)`), and a computed goto loads through one (`mov (%rdx,%rax,8), %rax`).
  const dispatch = (name: string, target: string, jump: string[]) => dispatchThrough(name, target, [`  mov $${name}_tbl, %edx`], ['  mov %rdi, %rax', ...jump]);
  const prog = assemble([
    dispatch('aimed', '.Laimed_mid', ['  jmp *(%rdx,%rax,8)']),
    dispatch('loaded', '.Lloaded_mid', ['  mov (%rdx,%rax,8), %rax', '  jmp *%rax']),
    dispatch('unaimed', '.Lunaimed_mid', ['  jmp *(%rdx,%rax,8)']),
    '.section .rodata\n.balign 8\naimed_tbl:\n.quad .Laimed_mid\n.quad .Laimed_mid\nloaded_tbl:\n.quad .Lloaded_mid\n.quad loaded\nunaimed_tbl:\n.quad unaimed\n.quad unaimed\n',
  ].join('\n'));
  const patchAt = await patchesByFunction(prog);
  assert.is(patchAt('unaimed')?.variant, 'displace');
  for (const name of ['aimed', 'loaded']) {
    const p = patchAt(name);
    assert.is.not(p?.variant, 'displace', name);
    assert.match(p?.reason ?? '', /may be a jump-table target/, name);
  }
});

test('displace: an exception landing pad right after a site stays in place; an unreadable exception table refuses its function', async () => {
  // A function with an LSDA (as g++ emits for a try block or a cleanup), written out by hand:
  // one call-site entry whose landing pad is \`pad\`. The unwinder lands there; no branch shows it.
  const withLsda = (name: string, pad: string, lsda: string) => [
    `.text\n.globl ${name}\n.type ${name},@function\n${name}:`,
    '  .cfi_startproc',
    '  .cfi_personality 0x3, personality',
    `  .cfi_lsda 0x3, ${lsda}`,
    '  syscall',
    `.L${name}_after:`,
    '  mov %rax, %rdi',
    '  mov %rdi, %rsi',
    `.L${name}_end:`,
    '  ret',
    '  .cfi_endproc',
    `.size ${name},.-${name}`,
    '.section .gcc_except_table,"a",@progbits',
    `.L${name}_lsda:`,
    '  .byte 0xff, 0xff, 0x1',
    `  .uleb128 .L${name}_cs_end-.L${name}_cs`,
    `.L${name}_cs:`,
    `  .uleb128 0, 2, ${pad}-${name}, 0`,
    `.L${name}_cs_end:`,
  ].join('\n');
  const prog = assemble([
    fn('personality', '  ret'),
    withLsda('padded', '.Lpadded_after', '.Lpadded_lsda'),
    withLsda('elsewhere', '.Lelsewhere_end', '.Lelsewhere_lsda'),
    withLsda('lost', '.Llost_end', '0x7fff0000'),
  ].join('\n'));
  const { plan, report } = await planFile(prog.elf, 'unannotated');
  const patchAt = (name: string) => {
    const index = report.sites.findIndex((s) => s.va === prog.sym(name));
    assert.ok(index >= 0, `a site in ${name}`);
    return plan.patches.find((p) => p.site === index);
  };
  // The pad at the function's ret: the window (syscall, two movs) does not reach it.
  assert.is(patchAt('elsewhere')?.variant, 'displace');
  const padded = patchAt('padded');
  assert.is.not(padded?.variant, 'displace');
  assert.match(padded?.reason ?? '', `the instruction at ${vaHex(prog.sym('padded') + 2n)} is an exception landing pad`);
  const lost = patchAt('lost');
  assert.is.not(lost?.variant, 'displace');
  assert.match(lost?.reason ?? '', 'exception table cannot be read');
});

test('the guard\'s address set answers as a Set does, below and above 2^53', () => {
  let seed = 0x9a4d;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const high of [false, true]) {
    const values: bigint[] = [];
    for (let i = 0; i < 3000; i++) values.push(BigInt(Math.floor(random() * 0x10000)) + 0x400000n + (high && i % 50 === 0 ? 2n ** 60n : 0n));
    const set = new Set(values);
    const sorted = new SortedAddresses(BigUint64Array.from(values).sort());
    for (let q = 0; q < 20000; q++) {
      const va = q % 1000 === 0 ? 2n ** 60n + BigInt(q) : BigInt(Math.floor(random() * 0x12000)) + 0x3ff000n;
      assert.is(sorted.has(va), set.has(va), `${va.toString(16)} (${high ? 'with' : 'without'} addresses past 2^53)`);
    }
    for (const v of values.slice(0, 100)) assert.ok(sorted.has(v));
  }
});

test.run();
