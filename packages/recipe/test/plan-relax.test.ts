// `flags: clobber-if-dead` (glibc-rfc-relaxed): a site whose next instruction writes every flag
// (`cmp %rax,%rdi`) goes to the stub that drops the flags; a site followed by `jc` or `setc` keeps
// them (the lahf/sahf stub). fixtures/plan/golden.S holds the sites.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadRecipe, type PatchPlan, type Recipe } from '@libos/recipe';
import { Mnemonic, decode, goldenFixtures, planBytesAt, planFile, vaHex, type LinkKind } from './plan-helpers.js';

/** The stub symbol a rel32 site jumps to. */
function stubOf(plan: PatchPlan, siteVa: bigint): string {
  const p = plan.patches.find((x) => x.va === siteVa);
  if (p === undefined) throw new Error(`no patch at ${vaHex(siteVa)}`);
  const [, jmp] = decode(p.after, p.va, 2);
  const s = plan.symbols.find((x) => x.va === jmp!.nearTarget);
  return s?.name ?? `(no symbol at ${vaHex(jmp!.nearTarget!)})`;
}

/** Mnemonics of a stub's code, from its symbol. */
function stubMnemonics(plan: PatchPlan, name: string): number[] {
  const s = plan.symbols.find((x) => x.name === name)!;
  return decode(planBytesAt(plan, s.va, s.size), s.va).map((d) => d.mnemonic);
}

/**
 * The recipe with the trace entry: a hook that writes the flags, so the stub's choice shows. (The
 * recipes' passthrough entry needs no flag save at all: the kernel keeps them.)
 */
function withTrace(name: string): Recipe {
  return { ...loadRecipe(name).recipe!, entry: { kind: 'trace' } };
}

/** The site va of the annotated window inside a function of golden.S (the syscall after `mov $nr,%eax`). */
function siteIn(kind: LinkKind, fn: string): bigint {
  return goldenFixtures()[kind].sym(fn) + 5n;
}

for (const kind of ['static', 'pie'] as const) {
  test(`clobber-if-dead relaxes the site before cmp and keeps the save before jc/setc (${kind})`, async () => {
    const { plan } = await planFile(goldenFixtures()[kind].elf, withTrace('glibc-rfc-relaxed'));
    const cmpSite = siteIn(kind, 'annot_cmp');
    const jcSite = siteIn(kind, 'annot_jc');
    const setcSite = siteIn(kind, 'annot_setc');
    const at = (va: bigint) => plan.patches.find((p) => p.va === va)!;

    const relaxed = at(cmpSite);
    assert.is(relaxed.variant, 'rel32');
    assert.equal(relaxed.relaxations, [`flags clobbered: dead after the site (written by cmp at ${vaHex(cmpSite + 12n)} before any read)`]);
    assert.equal(at(jcSite).relaxations, [], 'jc reads CF');
    assert.equal(at(setcSite).relaxations, [], 'setc reads CF');

    // The two kinds of site reach different stubs.
    assert.match(stubOf(plan, cmpSite), /^libos_stub_noflags_/);
    assert.match(stubOf(plan, jcSite), /^libos_stub_lahf_/);
    assert.match(stubOf(plan, setcSite), /^libos_stub_lahf_/);
    assert.is.not(stubOf(plan, cmpSite), stubOf(plan, jcSite));

    // The lahf stub saves and restores the flags; the noflags one does not touch them.
    const lahf = stubMnemonics(plan, stubOf(plan, jcSite));
    assert.ok(lahf.includes(Mnemonic.Lahf) && lahf.includes(Mnemonic.Sahf), 'lahf/sahf in the keeping stub');
    const noflags = stubMnemonics(plan, stubOf(plan, cmpSite));
    assert.not.ok(noflags.includes(Mnemonic.Lahf) || noflags.includes(Mnemonic.Sahf) || noflags.includes(Mnemonic.Popfq), 'no flag save in the relaxed stub');

    // The wide site returns into `ret`: flags dead too. Two relaxations in all.
    assert.equal(plan.stats.relaxations, { 'flags clobbered': 2 });
  });
}

test('glibc-rfc (flags: preserve) relaxes nothing on the same input: lahf stubs for every site', async () => {
  const { plan } = await planFile(goldenFixtures().static.elf, withTrace('glibc-rfc'));
  for (const p of plan.patches) assert.equal(p.relaxations, [], vaHex(p.va));
  assert.equal(plan.stats.relaxations, {});
  for (const p of plan.patches) {
    const stub = stubOf(plan, p.va);
    assert.match(stub, /^libos_stub_lahf_rz/);
    assert.ok(stubMnemonics(plan, stub).includes(Mnemonic.Lahf), stub);
  }
});

test('passthrough: the fast stub makes the call itself and saves no flags (the kernel keeps them, and sets r11)', async () => {
  const { plan } = await planFile(goldenFixtures().static.elf, 'glibc-rfc');
  const stubs = new Set(plan.patches.map((p) => stubOf(plan, p.va)));
  for (const stub of stubs) {
    const m = stubMnemonics(plan, stub);
    assert.ok(m.includes(Mnemonic.Syscall), stub);
    assert.not.ok(m.includes(Mnemonic.Lahf) || m.includes(Mnemonic.Pushfq) || m.includes(Mnemonic.Call), stub);
  }
});

test.run();
