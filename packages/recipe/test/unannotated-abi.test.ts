/**
 * Issue 7: rcx and r11 after a site patched by displacement (fixtures/unannotated/rcx-r11.S).
 * `syscall` leaves rcx = the address right after it and r11 = rflags at the call; the run tests of
 * issue 5 check both at annotated sites, where no instruction is moved. Here the `cmp` after the
 * site is moved into the trampoline, and the call returns there.
 *
 * The call returns into the trampoline, where the moved successors run; the trampoline sets rcx
 * back to the address after the syscall in the program before they do (it once held the
 * trampoline's own resume label: code that reads rcx after a syscall saw the difference).
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDir, rewriteWith, runProgram } from './helpers/run-rewritten.js';

const SOURCE = resolve(fileURLToPath(new URL('../../../fixtures/unannotated/rcx-r11.S', import.meta.url)));

let built: string | undefined;
function probe(): string {
  if (built !== undefined) return built;
  const out = join(freshDir('rcx-r11'), 'rcx-r11');
  const cc = spawnSync('gcc', ['-nostdlib', '-static', '-o', out, SOURCE], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`gcc rcx-r11.S: ${cc.stderr}`);
  return (built = out);
}

test('rcx-r11: the original sees rcx and r11 as syscall leaves them', () => {
  assert.equal(runProgram(probe()), { status: 0, signal: null, stdout: '', stderr: '' });
});

for (const kind of ['passthrough', 'trace'] as const) {
  test(`rcx-r11 (${kind}): after a displaced site rcx is the address after the syscall and r11 the flags at it`, async () => {
    const rw = await rewriteWith(probe(), 'unannotated', { kind });
    const site = rw.plan.patches.find((p) => /moved cmp rax,/.test(p.reason));
    assert.ok(site !== undefined && site.variant === 'displace', `the getpid site is displaced with the cmp after it: ${rw.plan.patches.map((p) => p.reason).join('; ')}`);
    const r = runProgram(rw.path);
    assert.is(r.signal, null);
    assert.is((r.status ?? 0) & 2, 0, 'r11 holds the flags at the call');
    assert.is((r.status ?? 0) & 1, 0, 'rcx holds the address after the syscall');
  });
}

test.run();
