// Test helper for the planner tests (plan-*.test.ts): builds small assembly programs with `as` and
// `ld` (no compiler, no libc: the same bytes on every machine), plans a file with a recipe, and
// decodes patches with iced-x86.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import iced from 'iced-x86';
import { type ElfFile, readElf } from '@libos/elfkit';
import { findSites, loadRecipe, planPatches, type PatchPlan, type Recipe, type SiteReport } from '@libos/recipe';

const here = dirname(fileURLToPath(import.meta.url));
/** The golden-test program: fixtures/plan/golden.S. */
export const GOLDEN_SOURCE = join(here, '..', '..', '..', 'fixtures', 'plan', 'golden.S');
/** Where the golden plans live. */
export const GOLDEN_DIR = join(here, 'golden');

const dir = mkdtempSync(join(tmpdir(), 'libos-plan-'));
let serial = 0;
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** How a program is linked: static non-PIE, or `ld -pie` (a PIE with an interpreter, no libraries). */
export type LinkKind = 'static' | 'pie';

// Every ld default that differs between distributions' binutils builds is pinned, and the
// assembler adds no x86 ISA-used note: the output depends on the source alone.
const AS_ARGS = ['--64', '-mx86-used-note=no'];
const LD_COMMON = ['--build-id=none', '-z', 'separate-code', '-z', 'noexecstack', '-z', 'max-page-size=0x1000', '--hash-style=gnu', '--no-eh-frame-hdr'];
const LD_ARGS: Record<LinkKind, string[]> = {
  static: ['-static', '-no-pie', ...LD_COMMON],
  pie: ['-pie', '-z', 'relro', '-z', 'lazy', '-dynamic-linker', '/lib64/ld-linux-x86-64.so.2', ...LD_COMMON],
};

/** An assembled and linked program. */
export interface Linked {
  path: string;
  elf: ElfFile;
  /** va of a symbol of the program. */
  sym(name: string): bigint;
}

/**
 * Assembles `source` (GNU as syntax, no preprocessor) and links it. The object is written under a
 * fixed name in the working directory (`as` records no path), so the bytes do not depend on where
 * the temporary directory is.
 */
export function assembleAndLink(source: string, kind: LinkKind): Linked {
  const work = join(dir, `p${serial++}`);
  execFileSync('mkdir', ['-p', work]);
  writeFileSync(join(work, 'prog.S'), source);
  execFileSync('as', [...AS_ARGS, '-o', 'prog.o', 'prog.S'], { cwd: work, stdio: 'pipe' });
  // The quad table is relocated in a read-only section of the PIE: ld warns (DT_TEXTREL), as it should.
  execFileSync('ld', [...LD_ARGS[kind], '-o', 'prog', 'prog.o'], { cwd: work, stdio: 'pipe' });
  const path = join(work, 'prog');
  const elf = readElf(readFileSync(path));
  return {
    path,
    elf,
    sym(name: string): bigint {
      const s = elf.symbols.find((x) => x.name === name);
      if (s === undefined) throw new Error(`no symbol ${name}`);
      return s.value;
    },
  };
}

let golden: Record<LinkKind, Linked> | undefined;

/** fixtures/plan/golden.S linked both ways (built once per process). */
export function goldenFixtures(): Record<LinkKind, Linked> {
  if (golden === undefined) {
    const source = readFileSync(GOLDEN_SOURCE, 'utf8');
    golden = { static: assembleAndLink(source, 'static'), pie: assembleAndLink(source, 'pie') };
  }
  return golden;
}

/** A built-in recipe, or a failure naming its errors. */
export function builtin(name: string): Recipe {
  const { recipe, errors } = loadRecipe(name);
  if (recipe === undefined) throw new Error(`recipe ${name}: ${errors.map(String).join('; ')}`);
  return recipe;
}

export interface Planned {
  elf: ElfFile;
  report: SiteReport;
  plan: PatchPlan;
}

/** findSites + planPatches with a built-in recipe (or a given one). */
export async function planFile(elf: ElfFile, recipe: Recipe | string): Promise<Planned> {
  const r = typeof recipe === 'string' ? builtin(recipe) : recipe;
  const report = findSites(elf, r.match);
  const { plan } = await planPatches(elf, r, report.sites);
  return { elf, report, plan };
}

/** Reads a file from disk and plans it. */
export function planPath(path: string, recipe: Recipe | string): Promise<Planned> {
  return planFile(readElf(readFileSync(path)), recipe);
}

const { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction, Mnemonic } = iced;
export { Mnemonic };

/** One decoded instruction of a patch, with what the tests look at. */
export interface Decoded {
  ip: bigint;
  length: number;
  mnemonic: number;
  text: string;
  /** For a near jmp/call: its target. */
  nearTarget?: bigint;
  /** For a RIP-relative memory operand (lea, jmp *mem): the address it names. */
  ripAddress?: bigint;
  invalid: boolean;
}

/**
 * Decodes `bytes` as placed at `va`, instruction by instruction; stops after `limit` instructions
 * (an abs64 patch holds a .quad of data after its `jmp *0(%rip)`).
 */
export function decode(bytes: Uint8Array, va: bigint, limit = Infinity): Decoded[] {
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  const formatter = new Formatter(FormatterSyntax.Gas);
  const instr = new Instruction();
  decoder.ip = va;
  const out: Decoded[] = [];
  try {
    while (decoder.canDecode && out.length < limit) {
      decoder.decodeOut(instr);
      const d: Decoded = { ip: instr.ip, length: instr.length, mnemonic: instr.mnemonic, text: formatter.format(instr), invalid: instr.isInvalid };
      if (instr.isJmpShortOrNear || instr.isCallNear) d.nearTarget = instr.nearBranchTarget;
      if (instr.isIpRelMemoryOperand) d.ripAddress = instr.ipRelMemoryAddress;
      out.push(d);
    }
  } finally {
    instr.free();
    formatter.free();
    decoder.free();
  }
  return out;
}

/** The bytes of the plan's added code at `va` (from its segments). */
export function planBytesAt(plan: PatchPlan, va: bigint, length: number): Uint8Array {
  for (const s of plan.segments) {
    if (va >= s.va && va + BigInt(length) <= s.va + BigInt(s.bytes.length)) {
      const at = Number(va - s.va);
      return s.bytes.subarray(at, at + length);
    }
  }
  throw new Error(`0x${va.toString(16)} is in no segment of the plan`);
}

/** Hex of bytes, for messages. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** 0x-prefixed hex of an address. */
export function vaHex(va: bigint): string {
  return `0x${va.toString(16)}`;
}
