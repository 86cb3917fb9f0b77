/**
 * Issue 7, the fallback when displacement finds no window (fixtures/unannotated/no-window.S: a
 * site that starts its function and is followed by a symbol's target). In an executable the site
 * is trapped, and the trap's reason says why displacement was not possible; the rewritten program
 * runs as before with `passthrough` and with `trace`, and the trapped call is traced. The trap's
 * limit is shown too: with every signal blocked, the trap's SIGILL cannot be delivered and the
 * kernel kills the program with it. In a shared library the same site is trapped (when the
 * library has an initializer to install the handler from) or refused, with the reasons of every
 * tactic tried.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDir, rewriteWith, runProgram, traceLines, type Rewritten } from './helpers/run-rewritten.js';

const SOURCE = resolve(fileURLToPath(new URL('../../../fixtures/unannotated/no-window.S', import.meta.url)));
const OUTPUT = 'getpid returned through the site\n';

interface Fixture {
  exe: string;
  lib: string;
  passthrough: Rewritten;
  trace: Rewritten;
  libPlan: Rewritten;
}

let cached: Promise<Fixture> | undefined;

function fixture(): Promise<Fixture> {
  cached ??= (async () => {
    const dir = freshDir('no-window');
    const exe = join(dir, 'no-window');
    const lib = join(dir, 'libno-window.so');
    for (const [out, flags] of [[exe, ['-static']], [lib, ['-shared', '-fPIC']]] as const) {
      const cc = spawnSync('gcc', ['-nostdlib', ...flags, '-o', out, SOURCE], { encoding: 'utf8' });
      if (cc.status !== 0) throw new Error(`gcc ${flags.join(' ')} no-window.S: ${cc.stderr}`);
    }
    return {
      exe,
      lib,
      passthrough: await rewriteWith(exe, 'unannotated', { kind: 'passthrough' }),
      trace: await rewriteWith(exe, 'unannotated', { kind: 'trace' }),
      libPlan: await rewriteWith(lib, 'unannotated', { kind: 'passthrough' }),
    };
  })();
  return cached;
}

function siteOf(rw: Rewritten, symbol: string) {
  const index = rw.sites.findIndex((s) => s.symbol === symbol);
  assert.ok(index >= 0, `a site in ${symbol}`);
  return { site: rw.sites[index]!, patch: rw.plan.patches.find((p) => p.site === index), refusal: rw.plan.refused.find((r) => r.site === index) };
}

test('no-window: the site no window fits is trapped, and the trap says why displacement failed', async () => {
  const fx = await fixture();
  for (const rw of [fx.passthrough, fx.trace]) {
    const { patch } = siteOf(rw, 'syscall_at_start');
    assert.ok(patch !== undefined, `patched: ${rw.plan.refused.map((r) => r.reason).join('; ')}`);
    assert.is(patch.variant, 'trap');
    assert.match(patch.reason, /not displace \((the function ends before 5 bytes|the instruction at 0x[0-9a-f]+ is a symbol or relocation target|not enough instructions before the site)\)/);
    // The other sites of the program are displaced.
    const others = rw.plan.patches.filter((p) => p !== patch);
    assert.is(others.length, 3);
    assert.ok(others.every((p) => p.variant === 'displace'), others.map((p) => p.reason).join('; '));
    assert.is(rw.plan.refused.length, 0);
  }
});

test('no-window: the rewritten program runs as before through the trap (passthrough, trace)', async () => {
  const fx = await fixture();
  const original = runProgram(fx.exe);
  assert.equal(original, { status: 0, signal: null, stdout: OUTPUT, stderr: '' });
  assert.equal(runProgram(fx.passthrough.path), original);
  const traced = runProgram(fx.trace.path);
  assert.is(traced.status, 0);
  assert.is(traced.stdout, OUTPUT);
  assert.equal(traceLines(traced.stderr).map((l) => l.name), ['getpid', 'write', 'exit_group'], 'the trapped getpid is traced like the displaced calls');
});

test('no-window: with every signal blocked, the trap cannot run and the kernel kills the program with SIGILL (the known limit)', async () => {
  const fx = await fixture();
  const original = runProgram(fx.exe, ['block-all-signals']);
  assert.equal(original, { status: 0, signal: null, stdout: OUTPUT, stderr: '' }, 'the original does not care');
  for (const rw of [fx.passthrough, fx.trace]) {
    const r = runProgram(rw.path, ['block-all-signals']);
    assert.is(r.signal, 'SIGILL', `the trapped site's ud2 kills it: ${JSON.stringify(r)}`);
    assert.is(r.stdout, '');
  }
});

test('no-window: in a shared library the site is trapped or refused, and the reason names every tactic tried', async () => {
  const fx = await fixture();
  const rw = fx.libPlan;
  const { patch, refusal } = siteOf(rw, 'syscall_at_start');
  if (refusal !== undefined) {
    assert.match(refusal.reason, /refused: displace \([^)]+\); rel32-site \([^)]+\); trap \([^)]+\)/, refusal.reason);
  } else {
    assert.ok(patch !== undefined);
    assert.is(patch.variant, 'trap');
    assert.match(patch.reason, /not displace \([^)]+\)/, patch.reason);
  }
  assert.is(rw.plan.patches.filter((p) => p.variant === 'displace').length, 3, 'the three ordinary sites are displaced');
});

test.run();
