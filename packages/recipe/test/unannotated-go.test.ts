/**
 * A static Go program (fixtures/unannotated/go-stress.go, built here with `go build`,
 * CGO_ENABLED=0) rewritten with the built-in recipe `unannotated`. Go makes its system calls
 * itself, without libc, on goroutine stacks that its runtime grows, moves, scans and preempts with
 * signals (see shared notes on Go: trampolines are entered and left with `jmp`, nothing is left
 * on the goroutine stack across the call). Shown here: every site is patched; with `passthrough`,
 * `trace` and a C handler that overwrites every caller-saved register, the program prints what
 * the original prints in repeated runs with the collector running often (GOGC=5); with `trace`
 * each raw getppid call of the goroutines is one trace line. The file is recognised as Go's, whose
 * register ABI passes arguments and results in rdi, rsi, r8-r11: r11 and the caller-saved
 * registers are kept at every site instead of being proved dead.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '@libos/recipe';
import { testNeeding } from '../../../fixtures/prerequisites.js';
import { countByName, freshDir, rewriteWith, traceLines } from './helpers/run-rewritten.js';

const SOURCE = resolve(fileURLToPath(new URL('../../../fixtures/unannotated/go-stress.go', import.meta.url)));
const CLOBBER_HANDLER = resolve(fileURLToPath(new URL('../../../fixtures/runtime/handler-clobber.c', import.meta.url)));
const GOROUTINES = 50;
const CALLS = 200;
const RUNS = 3;

const goVersion = spawnSync('go', ['version'], { encoding: 'utf8' });
const noGo = goVersion.status === 0 ? undefined : 'go is not installed (Debian: golang-go)';

/** Builds the fixture; the Go build cache lives in the test's scratch folder. */
function buildGo(): string {
  const dir = freshDir('go-stress');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'go-stress');
  const env = { ...process.env, CGO_ENABLED: '0', GOCACHE: join(dir, 'gocache'), GOPATH: join(dir, 'gopath'), HOME: dir, GOFLAGS: '', GO111MODULE: 'off' };
  const r = spawnSync('go', ['build', '-o', out, SOURCE], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`go build: ${r.stderr}`);
  return out;
}

function run(path: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(path, [String(GOROUTINES), String(CALLS)], { encoding: 'utf8', env: { ...process.env, GOGC: '5' }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const ENTRIES: [string, Entry][] = [
  ['passthrough', { kind: 'passthrough' }],
  ['trace', { kind: 'trace' }],
  ['a C handler that overwrites every caller-saved register', { kind: 'handler', source: CLOBBER_HANDLER }],
];

testNeeding(test, noGo, `Go (${goVersion.stdout?.trim() ?? 'go'}): a static program with goroutines, a busy collector and raw syscalls runs as before, every site patched`, async () => {
  const original = buildGo();
  const reference = run(original);
  assert.is(reference.status, 0, reference.stderr);
  assert.match(reference.stdout, new RegExp(`getppid calls ${GOROUTINES * CALLS}, wrong answers 0`));
  for (const [what, entry] of ENTRIES) {
    const rw = await rewriteWith(original, 'unannotated', entry, freshDir(`go-stress-${entry.kind}`));
    assert.ok(rw.sites.length >= 10, `${what}: the runtime's and package syscall's sites are found (${rw.sites.length})`);
    assert.is(rw.plan.refused.length, 0, `${what}: nothing refused: ${rw.plan.refused.map((r) => r.reason).join('; ')}`);
    assert.is(rw.plan.stats.patched, rw.sites.length);
    // Go's register ABI passes arguments and results in rdi, rsi, r8-r11: no proof that trusts the
    // SysV ABI at calls and returns is made, and each site says so.
    for (const p of rw.plan.patches) {
      assert.not.match(p.reason, /r11 not set|handler call saves/, `${what}: 0x${p.va.toString(16)}: ${p.reason}`);
      assert.match(p.reason, /kept at every site: a Go binary/);
    }
    for (let i = 0; i < RUNS; i++) {
      const r = run(rw.path);
      assert.is(r.signal, null, `${what}, run ${i + 1}: killed by ${r.signal}: ${r.stderr.slice(-2000)}`);
      assert.is(r.status, 0, `${what}, run ${i + 1}: ${r.stderr.split('\n').filter((l) => !l.startsWith('[libos] ')).join('\n').slice(-2000)}`);
      assert.is(r.stdout, reference.stdout, `${what}, run ${i + 1}: stdout`);
      if (entry.kind === 'trace') {
        const counts = countByName(traceLines(r.stderr).map((l) => l.name));
        // The goroutines' raw calls, and os.Getppid once in main.
        assert.is(counts.getppid, GOROUTINES * CALLS + 1, `trace: every getppid is seen (${JSON.stringify(counts)})`);
        for (const name of ['openat', 'write', 'read', 'unlinkat', 'exit_group']) assert.ok((counts[name] ?? 0) > 0, `trace shows ${name}`);
      } else {
        assert.not.match(r.stderr, /^\[libos\] /m);
      }
    }
  }
});

test.run();
