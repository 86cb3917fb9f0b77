// The golden plans applied: fixtures/plan/golden.S rewritten by every built-in recipe whose entry
// is in the file (passthrough) still makes the same system calls in the same order and exits 0,
// under strace. The slot and pointer recipes (gramine-style, occlum-style) need a LibOS to run.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listBuiltinRecipes, rewriteElf } from '@libos/recipe';
import { missingTool, skipPart } from '../../../fixtures/prerequisites.js';
import { builtin, goldenFixtures, planFile } from './plan-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'libos-plan-run-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const noStrace = missingTool('strace');
const hasStrace = noStrace === undefined;
// _start calls annot_cmp (getpid), annot_jc (getppid), annot_setc (getuid), annot_wide (gettid),
// plain_getpid, padded_getppid, then exit(0).
const CALLS = ['getpid', 'getppid', 'getuid', 'gettid', 'getpid', 'getppid', 'exit'];

function traced(path: string): { status: number | null; calls: string[]; signals: number } {
  if (!hasStrace) {
    const r = spawnSync(path, { timeout: 10_000 });
    return { status: r.status, calls: [], signals: 0 };
  }
  const r = spawnSync('strace', ['-qq', '-e', `trace=${[...new Set(CALLS)].join(',')}`, path], { timeout: 10_000, encoding: 'utf8' });
  const lines = r.stderr.split('\n');
  const calls = lines.map((l) => /^(\w+)\(/.exec(l)?.[1]).filter((c): c is string => c !== undefined);
  const signals = lines.filter((l) => l.startsWith('--- SIG')).length;
  return { status: r.status, calls, signals };
}

for (const kind of ['static', 'pie'] as const) {
  test(`golden.S (${kind}) rewritten by each passthrough recipe makes the same calls and exits 0`, async () => {
    if (noStrace !== undefined) skipPart(`golden.S (${kind}): the system calls compared under strace (the runs still are)`, noStrace);
    const fx = goldenFixtures()[kind];
    const original = traced(fx.path);
    assert.is(original.status, 0, 'the original runs');
    if (hasStrace) assert.equal(original.calls, CALLS);
    let ran = 0;
    for (const { name } of listBuiltinRecipes()) {
      const recipe = builtin(name);
      if (recipe.entry.kind !== 'passthrough') continue;
      const { elf, plan } = await planFile(fx.elf, recipe);
      const out = join(dir, `${kind}-${name}`);
      writeFileSync(out, rewriteElf(elf, plan));
      chmodSync(out, 0o755);
      const r = traced(out);
      assert.is(r.status, 0, `${name}: exit status`);
      if (hasStrace) {
        assert.equal(r.calls, CALLS, `${name}: calls`);
        // Each trapped site raises one SIGILL (ud2) on its way to the handler.
        assert.is(r.signals, plan.stats.byVariant.trap ?? 0, `${name}: one signal per trapped call`);
      }
      ran++;
    }
    assert.ok(ran >= 7, `${ran} recipes run`);
  });
}

test.run();
