// scratchLiveAfter: which of rdi, rsi, rdx, r10, r8, r9 the program may read after a site, so that
// the stub around a C handler saves only those. A wrong `dead` lets the handler corrupt a program,
// so the live cases (reads, partial writes, implicit operands, calls, returns, unknown paths)
// matter most.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ALL_SCRATCH, ScratchRegister as R, scratchLiveAfter, scratchNames, syscallArgumentCount } from '@libos/recipe';
import { assemble, fn } from './discover-asm.js';

const site = (name: string, after: string) => fn(name, `  mov $39, %eax\n  syscall\n.globl ${name}_after\n${name}_after:\n${after}`);

// Every path ends by writing all six whole, then `ret`, unless the case is about `ret` itself.
const KILL = '  xor %edi, %edi\n  xor %esi, %esi\n  xor %edx, %edx\n  xor %r8d, %r8d\n  xor %r9d, %r9d\n  xor %r10d, %r10d\n  ret';
const ALL_BUT_RDX = ALL_SCRATCH & ~R.rdx;

// name, code after the site, the live registers, what the reason must mention
const CASES: [string, string, number, RegExp][] = [
  // Not dead at ret: gcc's -fipa-ra keeps a caller's values in caller-saved registers the callee
  // never writes (fixtures/runtime/ipa-ra.c).
  ['ret', '  ret', ALL_SCRATCH, /may keep a value in it across the call/],
  ['killed', KILL, 0, /dead/],
  ['call', '  call ret_only\n  ret', ALL_SCRATCH, /arguments of the call/],
  ['tail_jump', '  jmp ret_only', ALL_SCRATCH, /leaves the function/],
  ['indirect', '  jmp *%rax', ALL_SCRATCH, /changes control flow|indirect/],
  ['read_r8', `  mov %r8, %rax\n${KILL}`, R.r8, /r8: read by mov/],
  ['read_address', `  mov (%rsi,%r10,8), %rax\n${KILL}`, R.rsi | R.r10, /read by mov/],
  ['written_whole', `  xor %edx, %edx\n  mov $1, %rdi\n  mov %rdi, %rax\n${KILL}`, 0, /dead/],
  ['partial_write', `  mov $1, %dil\n  mov %rdi, %rax\n${KILL}`, R.rdi, /rdi: read by mov/],
  ['read_modify', `  add $1, %r9\n${KILL}`, R.r9, /r9: read by add/],
  // Implicit operands: rep movsb reads rdi, rsi (and rcx); cqo and mul write all of rdx.
  ['implicit_read', `  rep movsb\n${KILL}`, R.rdi | R.rsi, /rdi, rsi: read by movsb|read by rep/],
  ['implicit_write', '  cqo\n  ret', ALL_BUT_RDX, /may keep a value/],
  ['mul_writes_rdx', '  mul %rcx\n  ret', ALL_BUT_RDX, /may keep a value/],
  ['div_reads_rdx', `  div %rcx\n${KILL}`, R.rdx, /rdx: read by div/],
  // A later system call reads as many arguments as its number takes.
  ['syscall_getpid', `  mov $39, %eax\n  syscall\n${KILL}`, 0, /dead/],
  ['syscall_write', `  mov $1, %eax\n  syscall\n${KILL}`, R.rdi | R.rsi | R.rdx, /read by the syscall at 0x[0-9a-f]+ \(1, 3 arguments\)/],
  // xor %eax,%eax gives the number too (read: 0), as syscall-number.ts's immediateToEax reads it.
  ['syscall_xor_read', `  xor %eax, %eax\n  syscall\n${KILL}`, R.rdi | R.rsi | R.rdx, /\(0, 3 arguments\)/],
  ['syscall_unknown', `  mov %rbx, %rax\n  syscall\n${KILL}`, ALL_SCRATCH, /number unknown/],
  ['syscall_mmap', `  mov $9, %eax\n  syscall\n${KILL}`, ALL_SCRATCH, /\(9, 6 arguments\)/],
  // One way of a branch reads it: live, whichever way is followed first.
  ['branch_one_reads', `  test %eax, %eax\n  jz 1f\n${KILL}\n1:\n  mov %r9, %rax\n${KILL}`, R.r9, /r9: read by mov/],
  ['branch_both_write', `  test %eax, %eax\n  jz 1f\n  xor %edi, %edi\n${KILL}\n1:\n  mov %rdi, %rax\n${KILL}`, R.rdi, /rdi: read by mov/],
];

const prog = assemble([fn('ret_only', '  ret'), ...CASES.map(([name, after]) => site(name, after))].join('\n'));

for (const [name, , live, why] of CASES) {
  test(`scratchLiveAfter: ${name} -> ${live === 0 ? 'none' : scratchNames(live)} live`, () => {
    const r = scratchLiveAfter(prog.elf, prog.sym(`${name}_after`));
    assert.is(scratchNames(r.live), scratchNames(live), r.reason);
    assert.match(r.reason, why);
  });
}

test('scratchLiveAfter: a loop back to the site reads what the site\'s own call takes', () => {
  // The loop re-runs `mov $1,%eax; syscall` (write: rdi, rsi, rdx), then leaves by ret.
  const loop = assemble(fn('loop', `  mov $1, %eax\n  syscall\n.globl loop_after\nloop_after:\n  sub $1, %ecx\n  jnz loop\n${KILL}`));
  const r = scratchLiveAfter(loop.elf, loop.sym('loop_after'));
  assert.is(scratchNames(r.live), 'rdi, rsi, rdx', r.reason);
});

test('scratchLiveAfter: outside any function, or past the budget, all six are live', () => {
  assert.is(scratchLiveAfter(prog.elf, 0x10n).live, ALL_SCRATCH);
  const long = assemble(site('long', `${'  nop\n'.repeat(80)}${KILL}`));
  const r = scratchLiveAfter(long.elf, long.sym('long_after'));
  assert.is(r.live, ALL_SCRATCH);
  assert.match(r.reason, /budget/);
  assert.is(scratchLiveAfter(long.elf, long.sym('long_after'), { maxInstructions: 100 }).live, 0);
});

test('syscallArgumentCount: certain counts, six for the rest', () => {
  assert.is(syscallArgumentCount(110), 0); // getppid
  assert.is(syscallArgumentCount(1), 3); // write
  assert.is(syscallArgumentCount(257), 4); // openat
  assert.is(syscallArgumentCount(9), 6); // mmap: not listed, all six
  assert.is(syscallArgumentCount(100000), 6);
});

test.run();
