/**
 * Issue 5: the rewritten file still reads cleanly with readelf and objdump, names its added code,
 * and is debuggable: a gdb backtrace taken inside a hook, a stub or a trampoline shows the
 * program's own frames, and a breakpoint in the trampoline section works. Also: revert gives the
 * input back byte for byte and verify flags a changed byte.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf, revertElf, verifyElf } from '@libos/elfkit';
import { readStoredPlan } from '@libos/recipe';
import { buildFixtures } from '../../../fixtures/build.js';
import { missingTool, testNeeding } from '../../../fixtures/prerequisites.js';
import { rewriteWith } from './helpers/run-rewritten.js';

const fx = await buildFixtures();
const traced = await rewriteWith(fx.pie, 'glibc-rfc', { kind: 'trace' });
const displaced = await rewriteWith(fx.static, 'unannotated', { kind: 'passthrough' });
const noGdb = missingTool('gdb');

function run(cmd: string, args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function gdbBacktrace(path: string, breakAt: string, steps: number): string[] {
  const r = run('gdb', ['-nx', '-batch', '-ex', `break ${breakAt}`, '-ex', 'run', '-ex', `stepi ${steps}`, '-ex', 'bt', path]);
  const frames = r.stdout.split('\n').filter((l) => /^#\d+ /.test(l));
  if (frames.length === 0) console.log(r.stdout, r.stderr);
  return frames;
}

for (const [label, rw] of [['glibc-rfc/trace PIE', traced], ['unannotated static', displaced]] as const) {
  test(`${label}: readelf -a and objdump -d read the output without a warning`, () => {
    const readelf = run('readelf', ['-a', '-W', rw.path]);
    assert.is(readelf.status, 0);
    assert.not.match(readelf.stderr, /warning|error/i, readelf.stderr);
    const objdump = run('objdump', ['-d', rw.path]);
    assert.is(objdump.status, 0);
    assert.is(objdump.stderr, '', objdump.stderr);
    assert.match(objdump.stdout, /Disassembly of section \.libos\.text:/);
    assert.match(objdump.stdout, /<libos_stub_lahf_rz(_nor11)?>:/);
    if (rw.plan.patches.some((p) => p.trampolineVa !== undefined)) assert.match(objdump.stdout, /<libos_site_[0-9a-f]+>:/);
  });

  test(`${label}: revert gives the input back byte for byte; verify flags a changed byte`, () => {
    const out = readFileSync(rw.path);
    const original = readFileSync(label.includes('PIE') ? fx.pie : fx.static);
    assert.ok(Buffer.from(revertElf(out)).equals(original), 'revert is byte-identical');
    assert.ok(verifyElf(out).ok);
    const patch = rw.plan.patches[0]!;
    const damaged = Buffer.from(out);
    damaged[patch.offset + 1] = (damaged[patch.offset + 1] ?? 0) ^ 0xff;
    const report = verifyElf(damaged);
    assert.not.ok(report.ok);
    assert.ok(report.changed.some((c) => c.offset <= patch.offset + 1 && patch.offset + 1 < c.offset + c.length), JSON.stringify(report.changed));
    assert.is(readStoredPlan(out)?.patches.length, rw.plan.patches.length, 'the stored plan reads back');
  });
}

testNeeding(test, noGdb, 'gdb: a backtrace inside the trace hook shows hook, stub, the program function and main', () => {
  const frames = gdbBacktrace(traced.path, 'libos_trace_hook', 4);
  assert.ok(frames.length >= 4, frames.join('\n'));
  assert.match(frames[0]!, /libos_trace_hook/);
  assert.match(frames[1]!, /libos_stub_lahf_rz/);
  assert.ok(frames.some((f) => / main \(/.test(f)), frames.join('\n'));
  assert.not.ok(frames.some((f) => /\?\? \(/.test(f)), `no unknown frame:\n${frames.join('\n')}`);
});

testNeeding(test, noGdb, 'gdb: a breakpoint in a site\'s trampoline stops there and unwinds into the program', () => {
  // The trampoline of the site in the program's c_write (run six times), whatever its variant.
  const elf = readElf(readFileSync(fx.static));
  const fn = elf.symbols.find((s) => s.name === 'c_write')!;
  const patch = displaced.plan.patches.find((p) => p.va >= fn.value && p.va < fn.value + BigInt(fn.size) && p.trampolineVa !== undefined);
  assert.ok(patch, 'c_write has a patched site with a trampoline');
  const frames = gdbBacktrace(displaced.path, `*0x${patch!.trampolineVa!.toString(16)}`, 1);
  // The trampoline stands in for c_write's frame (same CFA), so the next frame is c_write's caller.
  assert.ok(frames.length >= 2, `backtrace:\n${frames.join('\n')}`);
  assert.match(frames[0]!, /libos_site_/);
  assert.match(frames[1]!, /main/);
  assert.not.ok(frames.some((f) => /\?\? \(/.test(f)), `no unknown frame:\n${frames.join('\n')}`);
});

testNeeding(test, noGdb, 'gdb: a backtrace inside a C handler shows the stub (the bridge is inline in it, its frame rbp-based) and the program\'s frames', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'libos-debug-handler-'));
  const source = join(dir, 'handler.c');
  writeFileSync(source, '#include <libos-handler.h>\nstatic long calls;\nlong libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {\n  calls++;\n  if (nr == 110) return 4242;\n  return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);\n}\n');
  const rw = await rewriteWith(fx.pie, 'glibc-rfc', { kind: 'handler', source });
  const frames = gdbBacktrace(rw.path, 'libos_handler', 3);
  assert.match(frames[0] ?? '', /libos_handler/);
  assert.match(frames[1] ?? '', /libos_stub_lahf_rz/);
  assert.ok(frames.some((f) => / main \(/.test(f)), frames.join('\n'));
  assert.not.ok(frames.some((f) => /\?\? \(/.test(f)), `no unknown frame:\n${frames.join('\n')}`);
});

testNeeding(test, noGdb, 'gdb: a C handler reached from a stub copy inside a trampoline unwinds through the site\'s function', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'libos-debug-handler-copy-'));
  const source = join(dir, 'handler.c');
  writeFileSync(source, '#include <libos-handler.h>\nlong libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {\n  return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);\n}\n');
  // unannotated: each site of the program gets a trampoline (displaced neighbours), which runs a copy
  // of the C-handler stub where the function's frame is rsp-based.
  const rw = await rewriteWith(fx.static, 'unannotated', { kind: 'handler', source });
  const frames = gdbBacktrace(rw.path, 'libos_handler', 0);
  assert.match(frames[0] ?? '', /libos_handler/);
  assert.match(frames[1] ?? '', /libos_site_/, frames.join('\n'));
  // The first call comes from libc's start-up code (the static binary's libc is rewritten too):
  // the trampoline unwinds into it and on to _start.
  assert.match(frames[2] ?? '', / in [_a-z]\w+ \(/, frames.join('\n'));
  assert.match(frames[frames.length - 1] ?? '', / _start \(/, frames.join('\n'));
  assert.not.ok(frames.some((f) => /\?\? \(/.test(f)), `no unknown frame:\n${frames.join('\n')}`);
});

test.run();
