/**
 * Crafted code that made planning take minutes: each case is answered, with the reason the site
 * got what it got. (Found by a hostile-input hunt; the inputs are made here with gcc.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findSites } from '@libos/recipe';
import { assemble, fn } from './discover-asm.js';
import { builtin, planFile } from './plan-helpers.js';

/**
 * A syscall whose neighbours can move, then `leas` lea instructions that each take a jump-table
 * base from `bases` (tbl+0, tbl+2, ...), an indirect jmp, and `tbl`: 16 KiB of zero bytes. Every
 * int32 entry is 0, i.e. its own base, which is an instruction boundary (00 00 is an instruction):
 * each table reads its full 4,096 entries.
 */
function tables(leas: number, bases: number): string {
  const body = ['  mov $39,%eax', '  syscall', '  mov %rax,%rdi', '  mov %rdi,%rsi'];
  for (let i = 0; i < leas; i++) body.push(`  lea tbl+${2 * (i % bases)}(%rip),%rax`);
  body.push('  jmp *%rax', 'tbl:', '  .zero 16400', '  ret');
  return fn('crafted', body.join('\n'));
}

test('jump tables: one table addressed 20,000 times is read once; the site is displaced', async () => {
  const prog = assemble(tables(20000, 1));
  const { plan } = await planFile(prog.elf, builtin('unannotated'));
  const site = plan.patches.find((p) => p.siteVa === findSites(prog.elf, builtin('unannotated').match).sites[0]!.va);
  assert.ok(site !== undefined, `patched: ${JSON.stringify(plan.refused)}`);
  assert.is(site!.variant, 'displace', site!.reason);
});

test('jump tables: 20 tables of 4,096 entries each is past the entries a function can mean: no displacement, and why', async () => {
  const prog = assemble(tables(20, 20));
  const { plan } = await planFile(prog.elf, builtin('unannotated'));
  const reasons = [...plan.patches.map((p) => p.reason), ...plan.refused.map((r) => r.reason)].join('\n');
  assert.match(reasons, /jump tables hold more entries than it can jump to/);
  assert.not.ok(plan.patches.some((p) => p.variant === 'displace'), reasons);
});

test('nested ranges: 2,000 functions each from its own syscall to the end of the code stop at a decoding budget, said once per function left', () => {
  const N = 2000;
  const lines = ['.text'];
  for (let i = 0; i < N; i++) lines.push(`.globl f${i}`, `.type f${i},@function`, `f${i}:`, '  mov $39,%eax', '  syscall', `.size f${i}, end_of_code - f${i}`);
  lines.push('  ret', 'end_of_code:');
  const prog = assemble(lines.join('\n'));
  const report = findSites(prog.elf, builtin('unannotated').match);
  // Each range holds the code of every later one: decoding all would be ~14 MB for ~14 KB of code.
  const budget = report.diagnostics.filter((d) => d.code === 'DISCOVER_DECODE_BUDGET');
  assert.ok(budget.length > 0, `budget diagnostics: ${report.diagnostics.map((d) => d.code).join(', ')}`);
  assert.match(budget[0]!.message, /overlap so much/);
  assert.ok(report.sites.length > 0 && report.sites.length < N, `some sites trusted before the budget ran out (${report.sites.length})`);
  assert.ok(report.stats.functionsDecoded + budget.length <= N + 1);
});

test.run();
