// Every built-in recipe planned over the gcc fixtures (non-PIE, PIE, static, static-pie, the shared
// library): the expected site counts and variants, and every site patched or refused with a reason.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf } from '@libos/elfkit';
import { findSites, listBuiltinRecipes, planPatches, PlanError, type PatchPlan, type Site, type SiteReport } from '@libos/recipe';
import { buildFixtures, type FixtureName } from '../../../fixtures/build.js';
import { builtin, vaHex } from './plan-helpers.js';

const FIXTURES = ['nonPie', 'pie', 'static', 'staticPie', 'shared'] as const satisfies readonly FixtureName[];
type Fx = (typeof FIXTURES)[number];
const STATIC = new Set<Fx>(['static', 'staticPie']);
const ABSOLUTE_OK = new Set<Fx>(['nonPie', 'static']);

interface Case {
  fixture: Fx;
  /** Annotated sites in the fixture (fixtures/build.ts). */
  annotated: number;
  bytes: Uint8Array;
  report: SiteReport;
  plan: PatchPlan;
}

const WINDOW = [0x0f, 0x05, ...Array<number>(10).fill(0x90)].join();

/** Sites of the fixture's own annotated windows (room 12: syscall + 10 NOPs). */
function annotatedSites(c: Case): Site[] {
  return c.report.sites.filter((s) => s.room === 12 && [...c.bytes.subarray(s.offset, s.offset + 12)].join() === WINDOW);
}

function variantsOf(plan: PatchPlan): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of plan.patches) out[p.variant] = (out[p.variant] ?? 0) + 1;
  return out;
}

/** What each built-in recipe must do with each fixture. A recipe added without a line here fails. */
const EXPECT: Record<string, (c: Case) => void> = {
  'glibc-rfc': allRel32,
  'glibc-rfc-relaxed': allRel32,
  'glibc-rfc-seed-stub': allRel32,
  'glibc-rfc-abs64': (c) => {
    assert.is(c.plan.stats.sites, c.annotated, c.fixture);
    if (ABSOLUTE_OK.has(c.fixture)) {
      assert.equal(variantsOf(c.plan), { abs64: c.annotated }, c.fixture);
    } else if (c.fixture === 'shared') {
      // abs64 refused (position-independent), then trap, installed through the library's initializer.
      assert.equal(variantsOf(c.plan), { trap: c.annotated }, c.fixture);
      for (const p of c.plan.patches) assert.match(p.reason, /; not abs64 \(an absolute address/);
      assert.is(c.plan.entryPoint, undefined);
      assert.is(c.plan.startupPatch?.kind, 'dt-init');
    } else {
      // abs64 refused in a PIE, with the reason, then the fallback.
      assert.equal(variantsOf(c.plan), { trap: c.annotated }, c.fixture);
      for (const p of c.plan.patches) assert.match(p.reason, /; not abs64 \(an absolute address of the added code would be wrong after a position-independent file is relocated\)/);
      assert.ok(c.plan.entryPoint !== undefined, `${c.fixture}: a trap plan has a start stub`);
    }
  },
  'trap-only': (c) => {
    assert.ok(c.plan.stats.sites >= c.annotated, c.fixture);
    if (c.fixture === 'shared') {
      // The library's DT_INIT now starts the trap runtime's stub, which goes on to the old _init.
      assert.equal(variantsOf(c.plan), { trap: c.plan.stats.sites }, c.fixture);
      assert.is(c.plan.entryPoint, undefined);
      const start = c.plan.symbols.find((s) => s.name === 'libos_trap_start');
      assert.ok(start !== undefined && c.plan.startupPatch?.kind === 'dt-init', 'DT_INIT redirected');
      assert.is(new DataView(c.plan.startupPatch!.after.buffer).getBigUint64(0, true), start!.va);
    } else {
      assert.equal(variantsOf(c.plan), { trap: c.plan.stats.sites }, c.fixture);
      const start = c.plan.symbols.find((s) => s.name === 'libos_trap_start');
      assert.ok(start !== undefined && c.plan.entryPoint === start.va, `${c.fixture}: the entry point is the trap start stub`);
      if (STATIC.has(c.fixture)) assert.ok(c.plan.stats.sites > c.annotated, 'static glibc has syscalls of its own');
      else assert.is(c.plan.stats.sites, c.annotated);
    }
  },
  unannotated: (c) => {
    const annotated = annotatedSites(c);
    assert.is(annotated.length, c.annotated, c.fixture);
    // The annotated windows have room: a jump into the site's own trampoline.
    for (const s of annotated) assert.is(variantOfSite(c.plan, s), 'rel32-site', vaHex(s.va));
    if (!STATIC.has(c.fixture)) {
      assert.is(c.plan.stats.sites, c.annotated);
      return;
    }
    // The static fixtures' glibc syscalls (2 bytes, no padding) are displaced; any that is not
    // says why displacing failed before falling back.
    const bare = c.report.sites.filter((s) => s.room < 5);
    assert.ok(bare.length > 0, 'static glibc has bare syscall sites');
    let displaced = 0;
    for (const s of bare) {
      const v = variantOfSite(c.plan, s);
      if (v === 'displace') displaced++;
      else assert.match(reasonOfSite(c.plan, s), /displace \(/, `${vaHex(s.va)} (${s.symbol ?? '?'})`);
    }
    assert.ok(displaced >= bare.length * 0.9, `${displaced} of ${bare.length} glibc sites displaced`);
  },
  'gramine-style': (c) => {
    assert.is(c.plan.entry.kind, 'slot');
    const annotated = annotatedSites(c);
    assert.is(annotated.length, c.annotated, c.fixture);
    // Annotated sites: the seed's sequence, into a trampoline of the site's own that jumps through %gs:24.
    for (const s of annotated) assert.is(variantOfSite(c.plan, s), 'rel32', vaHex(s.va));
    // No stub: the entry owns the ABI.
    assert.not.ok(c.plan.symbols.some((s) => s.name.startsWith('libos_stub_')), 'no shared stub with a slot entry');
    assert.not.ok(c.report.sites.some((s) => s.symbol === '__restore_rt'), '__restore_rt is excluded');
    if (STATIC.has(c.fixture)) assert.ok((variantsOf(c.plan)['displace'] ?? 0) > 0, 'glibc sites displaced');
    else assert.is(c.plan.stats.sites, c.annotated);
  },
  'nop-padded': (c) => {
    const annotated = annotatedSites(c);
    assert.is(annotated.length, c.annotated);
    for (const s of annotated) assert.is(variantOfSite(c.plan, s), 'rel32', vaHex(s.va));
    for (const s of c.report.sites) assert.ok(s.room >= 5, `${vaHex(s.va)}: padding of at least 3`);
  },
  'mov-eax-syscall': (c) => {
    // Only sites right after `mov $nr,%eax`; their number is known.
    for (const s of c.report.sites) {
      assert.ok(s.movVa !== undefined && s.syscallNr !== undefined, vaHex(s.va));
      assert.is(s.movVa + 5n, s.va);
    }
    assert.ok(c.plan.stats.sites > 0);
    for (const p of c.plan.patches) assert.ok(p.syscallNr !== undefined);
  },
  // occlum-style needs __occlum_entry: checked apart (a PlanError).
  'occlum-style': () => {},
};

function variantOfSite(plan: PatchPlan, site: Site): string | undefined {
  const index = indexOf(plan, site);
  return plan.patches.find((p) => p.site === index)?.variant;
}
function reasonOfSite(plan: PatchPlan, site: Site): string {
  const index = indexOf(plan, site);
  return plan.patches.find((p) => p.site === index)?.reason ?? plan.refused.find((r) => r.site === index)?.reason ?? '';
}
const siteOrder = new WeakMap<PatchPlan, bigint[]>();
function indexOf(plan: PatchPlan, site: Site): number {
  return siteOrder.get(plan)!.indexOf(site.va);
}

function allRel32(c: Case): void {
  assert.is(c.plan.stats.sites, c.annotated, c.fixture);
  assert.equal(variantsOf(c.plan), { rel32: c.annotated }, c.fixture);
  assert.is(c.plan.refused.length, 0);
}

/** Every site appears exactly once, either patched or refused with a reason. */
function everySiteAccountedFor(c: Case, label: string): void {
  const n = c.report.sites.length;
  assert.is(c.plan.stats.sites, n, label);
  const seen = new Set<number>();
  for (const p of c.plan.patches) {
    assert.not.ok(seen.has(p.site), `${label}: site ${p.site} twice`);
    seen.add(p.site);
    assert.ok(p.reason.length > 0 && p.reason.startsWith(p.rule), `${label}: patch reason names its rule`);
  }
  for (const r of c.plan.refused) {
    assert.not.ok(seen.has(r.site), `${label}: site ${r.site} twice`);
    seen.add(r.site);
    assert.match(r.reason, /refused: .+/, `${label}: refusal ${vaHex(r.va)} has a reason`);
  }
  assert.is(seen.size, n, `${label}: every site patched or refused`);
  assert.is(c.plan.stats.patched, c.plan.patches.length);
  assert.is(c.plan.stats.refused, c.plan.refused.length);
  const sum = Object.values(c.plan.stats.byVariant).reduce((a, b) => a + (b ?? 0), 0);
  assert.is(sum, c.plan.patches.length, `${label}: byVariant adds up`);
}

test('every built-in recipe has expectations here', () => {
  for (const { name } of listBuiltinRecipes()) assert.ok(name in EXPECT, `no expectations for the built-in recipe ${name}`);
});

for (const { name } of listBuiltinRecipes()) {
  if (name === 'occlum-style') continue;
  test(`${name}: plans for the gcc fixtures (non-PIE, PIE, static, static-pie, shared)`, async () => {
    const fixtures = await buildFixtures();
    const recipe = builtin(name);
    for (const fixture of FIXTURES) {
      const info = fixtures.list.find((f) => f.name === fixture)!;
      const bytes = readFileSync(info.path);
      const elf = readElf(bytes);
      const report = findSites(elf, recipe.match);
      const { plan } = await planPatches(elf, recipe, report.sites);
      siteOrder.set(plan, [...report.sites].map((s) => s.va).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      const c: Case = { fixture, annotated: info.sites, bytes, report, plan };
      everySiteAccountedFor(c, `${name} ${fixture}`);
      EXPECT[name]!(c);
    }
  });
}

test('occlum-style: the plain fixtures define no __occlum_entry: PLAN_SYMBOL_NOT_FOUND', async () => {
  const fixtures = await buildFixtures();
  const recipe = builtin('occlum-style');
  assert.equal(recipe.entry, { kind: 'pointer', symbol: '__occlum_entry' });
  for (const fixture of FIXTURES) {
    const elf = readElf(readFileSync(fixtures[fixture]));
    const report = findSites(elf, recipe.match);
    assert.ok(report.sites.length > 0, fixture);
    try {
      await planPatches(elf, recipe, report.sites);
      assert.unreachable(`${fixture}: planned without __occlum_entry`);
    } catch (e) {
      if (!(e instanceof PlanError)) throw e;
      assert.is(e.code, 'PLAN_SYMBOL_NOT_FOUND', fixture);
      assert.match(e.message, /__occlum_entry/);
    }
  }
});

test('the golden fixture defines __occlum_entry: occlum-style jumps through it from every site', async () => {
  const { goldenFixtures, planFile } = await import('./plan-helpers.js');
  for (const fx of Object.values(goldenFixtures())) {
    const { plan } = await planFile(fx.elf, 'occlum-style');
    assert.ok(plan.patches.length > 0);
    assert.is(plan.refused.length, 0);
    const pointer = fx.sym('__occlum_entry');
    // Each site's trampoline ends in jmp *__occlum_entry(%rip): ff 25 rel32 with rel32 = pointer - next ip.
    const text = plan.segments[0]!;
    let jumps = 0;
    for (let i = 0; i + 6 <= text.bytes.length; i++) {
      if (text.bytes[i] !== 0xff || text.bytes[i + 1] !== 0x25) continue;
      const rel = new DataView(text.bytes.buffer, text.bytes.byteOffset + i + 2, 4).getInt32(0, true);
      if (text.va + BigInt(i + 6) + BigInt(rel) === pointer) jumps++;
    }
    assert.ok(jumps >= plan.patches.length, `${jumps} jumps through __occlum_entry for ${plan.patches.length} sites`);
  }
});

// docs/recipe-language.md says of `preceded-by: mov-eax-imm` that "the mov belongs to the site":
// the mov and the syscall together leave room for a jmp rel32.
test('mov-eax-syscall: a bare `mov $nr,%eax; syscall` takes a 5-byte jmp over its 7 bytes, not a trap', async () => {
  const { goldenFixtures, planFile } = await import('./plan-helpers.js');
  const fx = goldenFixtures().static;
  const { report, plan } = await planFile(fx.elf, 'mov-eax-syscall');
  const exit = report.sites.find((s) => s.syscallNr === 60)!;
  assert.is(exit.movVa, exit.va - 5n);
  const p = plan.patches.find((x) => x.va === exit.movVa);
  assert.ok(p !== undefined, 'a patch starting at the mov');
  assert.is(p.variant, 'rel32-site');
  assert.is(p.after.length, 7);
  assert.is(plan.stats.byVariant.trap ?? 0, 0);
});

test.run();
