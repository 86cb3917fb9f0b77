/**
 * Issue 5: the syscall ABI across a rewritten site, checked by running a probe program
 * (fixtures/runtime/abi.c, abi-asm.S): CF and ZF set and clear by stc/cmp before an annotated site and
 * read by setc/setz after it; all six arithmetic flags (popfq/pushfq); the whole red zone of a leaf
 * function (-8 ... -128(%rsp)); xmm0..xmm15 (and all of ymm0..ymm15 on an AVX machine); every
 * general register a syscall keeps; CF, ZF and the red zone at a site whose number comes from a
 * register, so its trampoline checks it at run time; rcx (the resume address) and r11 (the flags at
 * the site) as `syscall` leaves them; DF set across a write site.
 *
 * glibc-rfc-relaxed is held to rcx/r11 too: where a site's flags are dead (a `test` writes them before
 * any read) clobber-if-dead drops them, but the code may read r11, which `rcx-r11: syscall` promises
 * holds the flags at the site (red while the relaxed stub took r11 after the hook).
 *
 * The probes are shown able to fail: the original binary passes, and the same binary asked to damage
 * one probe's state right after its site (`corrupt-*`) reports that probe and exits 1, before and after
 * rewriting. A recipe that lets the stub use the red zone and drop the flags is caught by the probes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRecipe } from '@libos/recipe';
import type { Entry } from '@libos/recipe';
import { buildRuntimeFixtures, type RuntimeFixtures } from './helpers/build-runtime-fixtures.js';
import { only, rewriteWith, runProgram, traceCounts } from './helpers/run-rewritten.js';
import { decode, planBytesAt } from './plan-helpers.js';

const ALL_OK = 'abi: cf/zf ok\nabi: arithmetic flags ok\nabi: red zone ok\nabi: xmm0-xmm15 ok\nabi: general registers ok\nabi: run-time-checked site ok\nabi: rcx/r11 ok\nabi: df set\nabi: direction flag ok\n';
const CONTROLS: { arg: string; line: RegExp }[] = [
  { arg: 'corrupt-flags', line: /^abi: cf\/zf FAILED mask=0x1$/m },
  { arg: 'corrupt-all-flags', line: /^abi: arithmetic flags FAILED changed=0x40$/m },
  { arg: 'corrupt-red-zone', line: /^abi: red zone FAILED qwords lost=0x3$/m },
  { arg: 'corrupt-vector', line: /^abi: xmm FAILED registers=0x80$/m },
  { arg: 'corrupt-gprs', line: /^abi: general registers FAILED mask=0x200$/m },
  { arg: 'corrupt-dynamic', line: /^abi: run-time-checked site FAILED mask=0x1$/m },
  { arg: 'corrupt-rcx-r11', line: /^abi: rcx\/r11 FAILED mask=0x2$/m },
  { arg: 'corrupt-direction', line: /^abi: direction flag FAILED$/m },
];
// Per run: write 9, getpid 12 (cf/zf: 4 cases x 3), getppid 30 + 3 + 3 + 3 + 3 + 3, exit_group 1.
const TRACE = { exit_group: 1, getpid: 12, getppid: 45, write: 9 };
const BINARIES: (keyof Omit<RuntimeFixtures, 'dir'>)[] = ['abi', 'abiNonPie', 'abiStatic', 'abiStaticPie'];
// Every built-in recipe keeps the full ABI at these sites: the preserving stubs (glibc-rfc,
// glibc-rfc-seed-stub), relaxed (the flags are read after each site, so clobber-if-dead must keep
// them), the per-site and displacing variants, and the trap variant (the kernel's signal frame).
// mov-eax-syscall patches only the sites where `mov $nr,%eax` sits right before the syscall.
const PRESERVING = ['glibc-rfc', 'glibc-rfc-seed-stub', 'glibc-rfc-relaxed', 'glibc-rfc-abs64', 'nop-padded', 'gramine-style', 'occlum-style', 'unannotated', 'mov-eax-syscall', 'trap-only'];
const PARTIAL = new Set(['mov-eax-syscall']);
const ENTRIES: Entry[] = [{ kind: 'passthrough' }, { kind: 'trace' }];

function assertControls(path: string, what: string): void {
  for (const c of CONTROLS) {
    const r = runProgram(path, [c.arg]);
    assert.is(r.status, 1, `${what} ${c.arg}: the probe must fail (stdout ${JSON.stringify(r.stdout)})`);
    assert.match(r.stdout, c.line, `${what} ${c.arg}`);
    assert.is(r.stdout.split('\n').filter((l) => l.includes('FAILED')).length, 1, `${what} ${c.arg}: only that probe fails`);
  }
}

for (const bin of BINARIES) {
  test(`${bin}: the original passes every probe, and each negative control fails its probe`, async () => {
    const fx = await buildRuntimeFixtures();
    const r = runProgram(fx[bin]);
    assert.is(r.stdout, ALL_OK);
    assert.is(r.status, 0);
    assertControls(fx[bin], 'original');
  });

  for (const recipe of PRESERVING) {
    test(`${bin} x ${recipe}: flags, red zone, xmm and registers survive every rewritten site (passthrough, trace)`, async () => {
      const fx = await buildRuntimeFixtures();
      for (const entry of ENTRIES) {
        const rw = await rewriteWith(fx[bin], recipe, entry);
        // The probe's 16 annotated sites (a static binary's glibc adds sites for the decoding recipes).
        const own = rw.plan.patches.filter((p) => /^(abi_|main$|put)/.test(rw.sites[p.site]?.symbol ?? ''));
        if (PARTIAL.has(recipe)) assert.ok(own.length >= 1, `${entry.kind}: some probe sites are patched`);
        else assert.is(own.length, 16, `${entry.kind}: the 16 annotated sites are patched (refused: ${rw.plan.refused.map((x) => x.reason).join('; ')})`);
        const r = runProgram(rw.path);
        assert.is(r.signal, null, `${entry.kind}: killed by ${r.signal}`);
        assert.is(r.stdout, ALL_OK, `${entry.kind}`);
        assert.is(r.status, 0, `${entry.kind}`);
        if (entry.kind === 'trace' && !PARTIAL.has(recipe)) assert.equal(only(traceCounts(r.stderr), Object.keys(TRACE)), TRACE, 'one trace line per call');
        // All 256 bits of ymm0..ymm15 too, on an AVX machine.
        const y = runProgram(rw.path, ['ymm']);
        assert.ok(y.stdout === 'abi: ymm0-ymm15 ok\n' || y.stdout === 'abi: no avx\n', `${entry.kind} ymm: ${y.stdout}`);
        assert.is(y.status, 0, `${entry.kind} ymm`);
        // The probes still see damage after rewriting: the pass above is not a probe gone blind.
        if (entry.kind === 'passthrough') assertControls(rw.path, `${recipe} ${entry.kind}`);
      }
    });
  }
}

// Hook-only entries in the program itself (fixtures/runtime/entry-table.S), which the fast stub
// decodes: it copies a straight-line entry into itself instead of calling it, and saves only what
// the entry can change (flags, rcx) and what the program reads after each site (r11). Every probe
// must pass as in the original, and still fail its control.
const TABLE_ENTRIES: { name: string; copied: boolean }[] = [
  { name: 'table_hook', copied: true },
  { name: 'table_hook_flags', copied: true },
  { name: 'table_hook_rcx', copied: false },
  { name: 'table_hook_frame', copied: false },
];
const TABLE_OK = ALL_OK.replace('abi: df set\nabi: direction flag ok\n', '');
const TABLE_CONTROLS = CONTROLS.filter((c) => c.arg !== 'corrupt-direction');

test('abiTable: the original (every site getpid or getppid) passes every probe, and each control fails', async () => {
  const fx = await buildRuntimeFixtures();
  const r = runProgram(fx.abiTable);
  assert.is(r.stdout, TABLE_OK);
  assert.is(r.status, 0);
});

for (const recipe of ['glibc-rfc', 'glibc-rfc-relaxed', 'glibc-rfc-abs64', 'unannotated']) {
  test(`abiTable x ${recipe}: entries copied into the stub or called keep flags, red zone, xmm, registers, rcx and r11`, async () => {
    const fx = await buildRuntimeFixtures();
    for (const { name, copied } of TABLE_ENTRIES) {
      const rw = await rewriteWith(fx.abiTable, recipe, { kind: 'symbol', name });
      const own = rw.plan.patches.filter((p) => /^(abi_|main$)/.test(rw.sites[p.site]?.symbol ?? ''));
      assert.is(own.length, 12, `${name}: the 12 probe sites are patched`);
      assert.match(rw.plan.entryAnalysis ?? '', copied ? /copied into the stub/ : /./, name);
      if (!copied) assert.not.match(rw.plan.entryAnalysis ?? '', /copied/, name);
      // Where r11 is not needed the copied stub uses no stack, and the sites' own trampolines (the
      // run-time-checked site, displaced neighbours) run a copy of it: no call, no jump to a stub.
      const tramps = rw.plan.symbols.filter((sym) => sym.name.startsWith('libos_site_'));
      const withCopy = tramps.filter((sym) => {
        const code = decode(planBytesAt(rw.plan, sym.va, sym.size), sym.va).map((d) => d.text);
        return code.some((t) => t.includes('libos_answers') || /\(,%rax,8\)/.test(t));
      });
      if (copied && recipe === 'unannotated') assert.ok(withCopy.length >= 6, `${name}: ${withCopy.length} of ${tramps.length} trampolines hold the entry's copy`);
      if (!copied) assert.is(withCopy.length, 0, `${name}: a called entry is never copied`);
      const r = runProgram(rw.path);
      assert.is(r.signal, null, `${name}: killed by ${r.signal}`);
      assert.is(r.stdout, TABLE_OK, name);
      assert.is(r.status, 0, name);
      for (const c of TABLE_CONTROLS) {
        const k = runProgram(rw.path, [c.arg]);
        assert.is(k.status, 1, `${name} ${c.arg}: the probe must fail (stdout ${JSON.stringify(k.stdout)})`);
        assert.match(k.stdout, c.line, `${name} ${c.arg}`);
      }
    }
  });
}

test('negative control: a recipe that lets the stub use the red zone and drop the flags is caught', async () => {
  const fx = await buildRuntimeFixtures();
  const text = [
    'name: abi-careless', 'description: glibc-rfc with the red zone, flags and vector registers given up', 'extends: glibc-rfc',
    'abi:', '  flags: clobber', '  red-zone: unused', '  vector-state: clobber', '',
  ].join('\n');
  const { recipe, errors } = parseRecipe(text, '/virtual/abi-careless.yaml');
  assert.equal(errors, []);
  for (const entry of ENTRIES) {
    const rw = await rewriteWith(fx.abiNonPie, recipe!, entry);
    const r = runProgram(rw.path);
    assert.is(r.status, 1, `${entry.kind}: the probes must report the careless stub (stdout ${JSON.stringify(r.stdout)})`);
    assert.match(r.stdout, /^abi: red zone FAILED/m, `${entry.kind}: a stub that pushes without stepping over the red zone loses it`);
  }
});

test.run();
