// The two analyses that let the fast stub keep less: r11LiveAfter (may the program read r11 after
// a site?) and entryEffects (what can the entry change; can it be copied into the stub?). Each
// case is a small function assembled with gcc; a wrong `dead` or a wrong `inline` would corrupt a
// program, so the live/opaque cases matter as much as the others.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { missingFile, skipPart } from '../../../fixtures/prerequisites.js';
import { readFileSync, realpathSync } from 'node:fs';
import iced from 'iced-x86';
import { readElf } from '@libos/elfkit';
import { analyzeFunction, entryEffects, findSites, loadRecipe, r11LiveAfter } from '@libos/recipe';
import { functionAfter } from '../src/analyze/function-index.js';
import { mayNameR8ToR15 } from '../src/analyze/r11-live-after.js';
import { assemble, fn } from './discover-asm.js';

// Each site: `syscall`, then a global label `<name>_after` where the analysis starts.
const site = (name: string, after: string) => fn(name, `  mov $39, %eax\n  syscall\n.globl ${name}_after\n${name}_after:\n${after}`);

const R11_CASES: [string, string, boolean, RegExp][] = [
  ['ret', '  ret', false, /ret/],
  ['call', '  call ret_only\n  mov %r11, %rax\n  ret', false, /call/],
  ['overwritten', '  mov $1, %r11d\n  mov %r11, %rax\n  ret', false, /written by mov/],
  ['next_syscall', '  mov $39, %eax\n  syscall\n  mov %r11, %rax\n  ret', false, /syscall/],
  ['read_mov', '  mov %r11, %rax\n  ret', true, /read by mov/],
  ['read_mem', '  mov (%r11), %rax\n  ret', true, /read by mov/],
  ['read_byte', '  add %r11b, %al\n  ret', true, /read by add/],
  ['partial_write', '  mov $1, %r11w\n  mov %r11, %rax\n  ret', true, /read by mov/],
  ['pushf_r11', '  push %r11\n  popfq\n  ret', true, /read by push/],
  // r11 named through a VEX prefix, behind a legacy prefix, as an index: the byte pre-test must let each through.
  ['read_vex', '  andn %r11, %rax, %rdx\n  ret', true, /read by andn/],
  ['read_prefixed', '  mov %r11w, %ax\n  ret', true, /read by mov/],
  // A redundant REX before the one that names r11 (the CPU takes the last): still read.
  ['read_double_rex', '  .byte 0x40, 0x4c, 0x89, 0xd8\n  ret', true, /read by mov/],
  ['read_index', '  mov (%rax,%r11,8), %rdx\n  ret', true, /read by mov/],
  ['straight_line_then_read', '  mov %rdi, %rax\n  add $1, %rax\n  lea 8(%rsp), %rsi\n  xor %r11d, %edx\n  ret', true, /read by xor/],
  // One way of the branch reads it: live, whichever way is decoded first.
  ['branch_one_reads', '  test %eax, %eax\n  jz 1f\n  ret\n1:\n  mov %r11, %rdx\n  ret', true, /read by mov/],
  ['branch_both_dead', '  test %eax, %eax\n  jz 1f\n  xor %eax, %eax\n  ret\n1:\n  mov $2, %r11d\n  ret', false, /every path/],
  // A loop back to the site: the syscall there ends r11's life on that path.
  ['loop', '  sub $1, %edi\n  jnz loop\n  ret', false, /every path/],
  ['indirect', '  jmp *%rax', true, /indirect|control flow/],
  ['leaves', '  jmp ret_only', true, /leaves the function/],
];

const prog = assemble([
  fn('ret_only', '  ret'),
  ...R11_CASES.map(([name, after]) => site(name, after)),
].join('\n'));

for (const [name, , live, why] of R11_CASES) {
  test(`r11LiveAfter: ${name} -> ${live ? 'live' : 'dead'}`, () => {
    const r = r11LiveAfter(prog.elf, prog.sym(`${name}_after`));
    assert.is(r.live, live, r.reason);
    assert.match(r.reason, why);
  });
}

test('r11LiveAfter: outside any function, or past the budget, is live', () => {
  assert.is(r11LiveAfter(prog.elf, 0x10n).live, true);
  const long = assemble(site('long', `${'  nop\n'.repeat(80)}  ret`));
  const r = r11LiveAfter(long.elf, long.sym('long_after'));
  assert.is(r.live, true);
  assert.match(r.reason, /budget/);
  assert.is(r11LiveAfter(long.elf, long.sym('long_after'), { maxInstructions: 100 }).live, false);
});

const entries = assemble([
  fn('cached', '  movq cached_value(%rip), %rax\n  ret'),
  fn('flag_writer', '  cmp $110, %eax\n  mov $7, %eax\n  ret'),
  fn('rcx_writer', '  mov %rdi, %rcx\n  mov %rcx, %rax\n  ret'),
  fn('stack_user', '  push %rbx\n  mov $1, %eax\n  pop %rbx\n  ret'),
  fn('brancher', '  test %eax, %eax\n  jz 1f\n  mov $1, %eax\n1:\n  ret'),
  fn('caller', '  call cached\n  ret'),
  fn('syscaller', '  syscall\n  ret'),
  fn('ret_imm', '  ret $8'),
  fn('long_body', `${'  add $1, %rax\n'.repeat(9)}  ret`),
  '.data\n.globl cached_value\ncached_value: .quad 42\n',
].join('\n'));

test('entryEffects: a load from a RIP-relative variable is copied into the stub, its target kept', () => {
  const va = entries.sym('cached');
  const fx = entryEffects(entries.elf, va);
  assert.equal([fx.writesFlags, fx.writesRcx, fx.writesR11, fx.usesStack], [false, false, false, false]);
  assert.ok(fx.inline !== undefined, fx.reason);
  assert.is(fx.inline!.length, 1);
  assert.is(fx.inline![0]!.ripRelative?.target, entries.sym('cached_value'));
  assert.match(fx.reason, /copied into the stub/);
});

test('entryEffects: flags and rcx writes are seen; an rcx writer is called, not copied', () => {
  const flags = entryEffects(entries.elf, entries.sym('flag_writer'));
  assert.is(flags.writesFlags, true);
  assert.ok(flags.inline !== undefined, 'a flag writer can still be copied: the stub saves the flags around it');
  const rcx = entryEffects(entries.elf, entries.sym('rcx_writer'));
  assert.is(rcx.writesRcx, true);
  assert.is(rcx.inline, undefined);
  const long = entryEffects(entries.elf, entries.sym('long_body'));
  assert.is(long.inline, undefined, 'longer than the copy limit');
  assert.is(long.writesFlags, true);
});

test('entryEffects: a passthrough entry (syscall; ret) writes rcx and r11, not the flags: called, no flag save', () => {
  const fx = entryEffects(entries.elf, entries.sym('syscaller'));
  assert.equal([fx.writesFlags, fx.writesRcx, fx.writesR11, fx.usesStack], [false, true, true, false], fx.reason);
  assert.is(fx.inline, undefined);
});

for (const name of ['stack_user', 'brancher', 'caller', 'ret_imm']) {
  test(`entryEffects: ${name} is opaque (may do all the hook convention allows)`, () => {
    const fx = entryEffects(entries.elf, entries.sym(name));
    assert.equal([fx.writesFlags, fx.writesRcx, fx.writesR11, fx.usesStack], [true, true, true, true], fx.reason);
    assert.is(fx.inline, undefined);
  });
}

test('entryEffects: an address outside the file is opaque', () => {
  const fx = entryEffects(entries.elf, 0x7fff0000n);
  assert.is(fx.usesStack, true);
  assert.match(fx.reason, /not in the file/);
});


test('mayNameR8ToR15: true for every instruction of libc.so.6 that iced-x86 sees naming r8-r15', () => {
  // The byte test spares r11LiveAfter the operand queries; a false "no" would let a read of r11
  // pass unseen, so it is checked against iced-x86 over a whole real library (linear sweep of its
  // executable sections).
  const libc = readElf(readFileSync(realpathSync('/lib/x86_64-linux-gnu/libc.so.6')));
  const { Decoder, DecoderOptions, Instruction, OpKind, Register } = iced;
  const extended = new Set<number>();
  for (const name of Object.keys(Register)) if (/^R(8|9|1[0-5])[DWL]?$/.test(name)) extended.add((Register as unknown as Record<string, number>)[name]!);
  assert.is(extended.size, 32);
  const instr = new Instruction();
  let named = 0;
  let total = 0;
  for (const section of libc.sections) {
    if ((section.flags & 0x4n) === 0n || section.type === 8 || section.size === 0) continue;
    const start = Number(section.offset);
    const bytes = libc.bytes.subarray(start, start + Number(section.size));
    const decoder = new Decoder(64, bytes, DecoderOptions.None);
    let position = 0;
    while (decoder.canDecode) {
      decoder.decodeOut(instr);
      total++;
      let uses = extended.has(instr.memoryBase) || extended.has(instr.memoryIndex);
      for (let i = 0; i < instr.opCount && !uses; i++) if (instr.opKind(i) === OpKind.Register && extended.has(instr.opRegister(i))) uses = true;
      if (uses) {
        named++;
        if (!mayNameR8ToR15(libc.bytes, start + position, instr.length)) {
          assert.unreachable(`${instr.toString()} at offset ${start + position} names r8-r15 but the byte test says no`);
        }
      }
      position += instr.length;
    }
    decoder.free();
  }
  instr.free();
  // Enough of both kinds that the check means something.
  assert.ok(named > 20_000 && total > 5 * named, `${named} of ${total}`);
});

test('r11LiveAfter with the function\'s analysis answers as without it, at every site of real files', () => {
  // The analysis lets it step over instructions that neither branch nor can name r11; the answer
  // and its reason must not change (the reason is in the plan a rewrite stores).
  const match = loadRecipe('unannotated').recipe!.match;
  let compared = 0;
  let dead = 0;
  for (const path of ['/lib/x86_64-linux-gnu/libc.so.6', '/bin/busybox', '/lib64/ld-linux-x86-64.so.2', '/usr/bin/gdb']) {
    const missing = missingFile(path);
    if (missing !== undefined) {
      skipPart(`r11 with and without the analysis on ${path}`, missing);
      continue;
    }
    const elf = readElf(readFileSync(realpathSync(path)));
    for (const site of findSites(elf, match).sites) {
      const va = site.va + BigInt(site.room);
      const fn = functionAfter(elf, va);
      if (fn === undefined) continue;
      const analysis = analyzeFunction(elf, fn);
      const plain = r11LiveAfter(elf, va, { function: fn });
      const withAnalysis = r11LiveAfter(elf, va, { function: fn, analysis });
      assert.equal(withAnalysis, plain, `${path} 0x${va.toString(16)}`);
      // A budget too small to decide, too: the steps over instructions count as before.
      assert.equal(r11LiveAfter(elf, va, { function: fn, maxInstructions: 3, analysis }), r11LiveAfter(elf, va, { function: fn, maxInstructions: 3 }));
      compared++;
      if (!plain.live) dead++;
    }
  }
  assert.ok(compared > 800 && dead > 300 && compared - dead > 30, `${compared} sites, ${dead} dead`);
});

test.run();
