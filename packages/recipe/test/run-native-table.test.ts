/**
 * The trampolines' low-byte table (compile/site-code.ts): at a site whose number is known only at
 * run time, a 256-byte table of the native calls' low bytes (rt_sigreturn 15, clone 56, vfork 58,
 * clone3 435) sends most calls on at once and the rest to the full checks. Calls that share a low
 * byte with a native one but are not native (ppoll 271, kcmp 312, sched_setattr 314, quotactl 179)
 * must come back from the checks and reach the entry; a fork-like clone still goes through the
 * clone check. fixtures/runtime/low-byte.c makes them all through one site; rewritten with
 * `unannotated`, it prints what the original prints, and with `trace` each call is seen.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countByName, freshDir, rewriteWith, runProgram, traceLines } from './helpers/run-rewritten.js';

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'fixtures', 'runtime', 'low-byte.c');

function build(): string {
  const dir = freshDir('low-byte');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'low-byte');
  execFileSync('gcc', ['-O2', '-o', out, SOURCE]);
  return out;
}

test('low-byte.c x unannotated: calls sharing a native call\'s low byte reach the entry; the table is in the trampoline', async () => {
  const bin = build();
  const original = runProgram(bin);
  assert.is(original.status, 0, original.stderr);
  for (const kind of ['passthrough', 'trace'] as const) {
    const rw = await rewriteWith(bin, 'unannotated', { kind }, join(dirname(bin), kind));
    assert.ok(rw.plan.symbols.some((s) => s.name.startsWith('libos_native_low_bytes_')), 'the plan holds a low-byte table');
    const r = runProgram(rw.path);
    assert.is(r.signal, null, `${kind}: killed by ${r.signal}`);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, original.stdout, `${kind}: stdout`);
    if (kind !== 'trace') continue;
    const lines = traceLines(r.stderr);
    const counts = countByName(lines.map((l) => l.name));
    for (const name of ['ppoll', 'kcmp', 'sched_setattr', 'quotactl', 'getpid']) assert.ok((counts[name] ?? 0) > 0, `trace shows ${name}: ${JSON.stringify(counts)}`);
    assert.is(counts.kcmp, 2);
    // The fork-like clone goes through the entry: the parent's line (the child's pid) and the child's (0).
    assert.is(lines.filter((l) => l.name === 'clone').length, 2, JSON.stringify(counts));
  }
});

test.run();
