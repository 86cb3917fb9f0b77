import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FunctionIndex, InstructionKind, analyzeFunction, findSyscallNumber, flagsLiveAfter, instructionIndexAt, isBranchTarget, syscallNumberAt } from '@libos/recipe';
import { assemble, fn } from './discover-asm.js';

const prog = assemble([
  fn('branches', `
    xor %eax,%eax
  1: inc %eax
    cmp $10,%eax
    jb 1b
    call 2f
  2: pop %rcx
    jmp *%rcx
  `),
  fn('straight', `
    mov $1,%eax
    add $2,%eax
    ret
  `),
  // Flags fixtures: each `syscall` is the site; the label after it is where flagsLiveAfter starts.
  fn('f_cmp', 'syscall\n.globl f_cmp_after\nf_cmp_after:\n cmp %rax,%rdi\n jb 1f\n1: ret'),
  fn('f_jc', 'syscall\n.globl f_jc_after\nf_jc_after:\n jc 1f\n1: ret'),
  fn('f_setc', 'syscall\n.globl f_setc_after\nf_setc_after:\n setc %al\n ret'),
  fn('f_adc', 'syscall\n.globl f_adc_after\nf_adc_after:\n adc $0,%rax\n ret'),
  fn('f_ret', 'syscall\n.globl f_ret_after\nf_ret_after:\n mov %rax,%rdx\n ret'),
  fn('f_call', 'syscall\n.globl f_call_after\nf_call_after:\n call straight\n jc 1f\n1: ret'),
  fn('f_jmp', 'syscall\n.globl f_jmp_after\nf_jmp_after:\n jmp 1f\n int3\n1: test %rax,%rax\n jc 2f\n2: ret'),
  fn('f_inc', 'syscall\n.globl f_inc_after\nf_inc_after:\n inc %rax\n jz 1f\n1: ret'),
  fn('f_end', 'syscall\n.globl f_end_after\nf_end_after:\n mov %rax,%rdx'),
  fn('f_tail', 'syscall\n.globl f_tail_after\nf_tail_after:\n jmp straight'),
  fn('f_pushf', 'syscall\n.globl f_pushf_after\nf_pushf_after:\n pushf\n pop %rax\n ret'),
  // Syscall number fixtures.
  fn('n_eax', 'mov $39,%eax\n.globl n_eax_sc\nn_eax_sc: syscall\n ret'),
  fn('n_rax', 'mov $60,%rax\n mov %rdi,%rsi\n.globl n_rax_sc\nn_rax_sc: syscall\n ret'),
  fn('n_xor', 'xor %eax,%eax\n.globl n_xor_sc\nn_xor_sc: syscall\n ret'),
  fn('n_target', 'mov $1,%eax\n test %rdi,%rdi\n jz 1f\n mov $2,%eax\n1:\n.globl n_target_sc\nn_target_sc: syscall\n ret'),
  fn('n_target_before', 'jmp 1f\n1: mov $3,%eax\n nop\n.globl n_target_before_sc\nn_target_before_sc: syscall\n ret'),
  fn('n_clobber', 'mov $1,%eax\n mov %edi,%eax\n.globl n_clobber_sc\nn_clobber_sc: syscall\n ret'),
  fn('n_partial', 'mov $1,%eax\n mov $5,%al\n.globl n_partial_sc\nn_partial_sc: syscall\n ret'),
  fn('n_call', 'mov $1,%eax\n call straight\n.globl n_call_sc\nn_call_sc: syscall\n ret'),
  // mov $39,%eax in its 6-byte form (c7 c0 imm32).
  fn('n_long', '.byte 0xc7,0xc0,0x27,0,0,0\n.globl n_long_sc\nn_long_sc: syscall\n ret'),
  fn('n_none', 'mov %rdi,%rax\n.globl n_none_sc\nn_none_sc: syscall\n ret'),
].join('\n'));

function range(name: string) {
  const f = prog.elf.functions().find((x) => x.name === name);
  if (f === undefined) throw new Error(`no function ${name}`);
  return f;
}

test('analyzeFunction records boundaries, kinds, branch targets and indirect jumps', () => {
  const a = analyzeFunction(prog.elf, range('branches'));
  assert.is(a.error, undefined);
  // xor(2) inc(2) cmp(3) jb(2) call(5) pop(1) jmp*(2)
  assert.equal([...a.starts], [0, 2, 4, 7, 9, 14, 15]);
  assert.equal([...a.lengths], [2, 2, 3, 2, 5, 1, 2]);
  // The entry, the loop head (jb) and the pop (call 2f).
  assert.equal([...a.branchTargets], [0, 2, 14]);
  assert.ok(a.hasIndirectJump);
  assert.is(a.kinds[3], InstructionKind.branch);
  assert.is(a.firstInvalid, -1);
  assert.ok(isBranchTarget(a, a.start + 2n));
  assert.not.ok(isBranchTarget(a, a.start + 4n));
  assert.is(instructionIndexAt(a, a.start + 7n), 3);
  assert.is(instructionIndexAt(a, a.start + 8n), -1, 'inside the cmp');

  const s = analyzeFunction(prog.elf, range('straight'));
  assert.not.ok(s.hasIndirectJump);
  assert.equal([...s.branchTargets], [0]);
  assert.is(s.count, 3);
});

test('analyzeFunction reports a range that is not in the file as an error value', () => {
  const a = analyzeFunction(prog.elf, { start: 0x10n, end: 0x20n, source: 'symbol' });
  assert.is(a.error?.code, 'ANALYZE_UNMAPPED');
  assert.is(a.count, 0);
  assert.is(analyzeFunction(prog.elf, { start: 0x401000n, end: 0x401000n, source: 'symbol' }).error?.code, 'ANALYZE_EMPTY');
});

const flagCases: [string, boolean, RegExp][] = [
  ['f_cmp', false, /^written by cmp at 0x[0-9a-f]+ before any read$/],
  ['f_jc', true, /^read by jb at/],
  ['f_setc', true, /^read by setb at/],
  ['f_adc', true, /^read by adc at/],
  ['f_ret', false, /^killed by ret at/],
  ['f_call', false, /^killed by call at/],
  ['f_jmp', false, /^written by test at/], // follows the jmp over the int3
  ['f_inc', true, /^conditional branch je at/], // inc keeps CF: the jz decides nothing
  ['f_end', true, /^runs out of the function/],
  ['f_tail', true, /leaves the function/],
  ['f_pushf', true, /^read by pushfq? at/],
];
for (const [name, live, reason] of flagCases) {
  test(`flagsLiveAfter: ${name} -> ${live ? 'live' : 'dead'}`, () => {
    const r = flagsLiveAfter(prog.elf, prog.sym(`${name}_after`));
    assert.is(r.live, live, r.reason);
    assert.match(r.reason, reason);
  });
}

test('flagsLiveAfter: an address in no function, and the instruction limit, mean live', () => {
  assert.ok(flagsLiveAfter(prog.elf, 0x10n).live);
  const r = flagsLiveAfter(prog.elf, prog.sym('f_cmp_after'), { maxInstructions: 0 });
  assert.ok(r.live);
  assert.match(r.reason, /no decision within 0/);
});

const numberCases: [string, number | undefined][] = [
  ['n_eax', 39],
  ['n_rax', 60],
  ['n_xor', 0],
  ['n_target', undefined], // the syscall is a branch target: two numbers reach it
  ['n_target_before', 3], // a target before the mov does not matter
  ['n_clobber', undefined],
  ['n_partial', undefined],
  ['n_call', undefined],
  ['n_none', undefined],
  ['n_long', 39],
];
for (const [name, nr] of numberCases) {
  test(`syscallNumberAt: ${name} -> ${String(nr)}`, () => {
    assert.is(syscallNumberAt(prog.elf, prog.sym(`${name}_sc`)), nr);
    const analysis = analyzeFunction(prog.elf, range(name));
    assert.is(syscallNumberAt(prog.elf, prog.sym(`${name}_sc`), { analysis }), nr);
  });
}

test('findSyscallNumber: where the number came from; only b8+imm32 right before counts as the systrap mov', () => {
  const eax = findSyscallNumber(prog.elf, analyzeFunction(prog.elf, range('n_eax')), prog.sym('n_eax_sc'));
  assert.equal(eax, { nr: 39, writerVa: prog.sym('n_eax'), writerLength: 5, movEaxImmediatelyBefore: true });
  const long = findSyscallNumber(prog.elf, analyzeFunction(prog.elf, range('n_long')), prog.sym('n_long_sc'));
  assert.equal(long, { nr: 39, writerVa: prog.sym('n_long'), writerLength: 6, movEaxImmediatelyBefore: false });
  const rax = findSyscallNumber(prog.elf, analyzeFunction(prog.elf, range('n_rax')), prog.sym('n_rax_sc'));
  assert.is(rax?.movEaxImmediatelyBefore, false, 'not adjacent');
  assert.is(rax?.writerLength, 7);
});

test('syscallNumberAt: not an instruction boundary -> undefined', () => {
  assert.is(syscallNumberAt(prog.elf, prog.sym('n_eax_sc') + 1n), undefined);
});

test('FunctionIndex: innermost range wins, empty ranges hold nothing, short gaps only', () => {
  const index = new FunctionIndex([
    { start: 0x100n, end: 0x200n, name: 'outer', source: 'symbol' },
    { start: 0x120n, end: 0x140n, name: 'inner', source: 'symbol' },
    { start: 0x150n, end: 0x150n, name: 'empty', source: 'symbol' },
    { start: 0x210n, end: 0x220n, name: 'next', source: 'symbol' },
    { start: 0x400n, end: 0x410n, name: 'far', source: 'symbol' },
  ]);
  assert.is(index.containing(0x130n)?.name, 'inner');
  assert.is(index.containing(0x140n)?.name, 'outer', 'past inner, still in outer');
  assert.is(index.containing(0x150n)?.name, 'outer');
  assert.is(index.containing(0xffn), undefined);
  assert.is(index.containing(0x200n), undefined);
  assert.equal(index.gapAround(0x204n, 64), { start: 0x200n, end: 0x210n, name: 'outer', source: 'eh_frame' });
  assert.is(index.gapAround(0x300n, 64), undefined, 'a 0x1e0-byte gap is not bridged');
  assert.is(index.gapAround(0x130n, 64), undefined, 'not in a gap');
  assert.is(index.gapAround(0x500n, 64), undefined, 'nothing after');
  // Unsorted input is sorted.
  assert.is(new FunctionIndex([{ start: 0x20n, end: 0x30n, source: 'symbol' }, { start: 0x0n, end: 0x10n, name: 'a', source: 'symbol' }]).containing(0x5n)?.name, 'a');
});

test('FunctionIndex: the same function as a plain scan on random nested, overlapping and empty ranges; one range over 80,000 small ones', () => {
  let x = 2463534242;
  const next = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  for (let round = 0; round < 200; round++) {
    const ranges = Array.from({ length: 1 + next(40) }, (_, i) => {
      const start = BigInt(next(200));
      return { start, end: start + BigInt(next(4) === 0 ? 0 : next(120)), name: `f${i}`, source: 'symbol' as const };
    });
    const index = new FunctionIndex(ranges);
    // The reference: the sorted list's last range (latest start; among equal starts the later) that holds va.
    const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (let va = 0n; va < 330n; va++) {
      let want: string | undefined;
      for (const f of sorted) if (f.start <= va && va < f.end) want = f.name;
      assert.is(index.containing(va)?.name, want, `round ${round}, va ${va}`);
    }
  }
  const many = [{ start: 0n, end: 3n * 80000n, name: 'big', source: 'symbol' as const }];
  for (let i = 0; i < 80000; i++) many.push({ start: 3n * BigInt(i), end: 3n * BigInt(i) + 1n, name: `s${i}`, source: 'symbol' });
  const big = new FunctionIndex(many);
  for (let i = 0; i < 80000; i++) assert.is(big.containing(3n * BigInt(i) + 2n)?.name, 'big');
});

test.run();
