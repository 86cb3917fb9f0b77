/**
 * Per-site decisions taken before any code exists: how native calls are routed, which ABI
 * relaxations apply, and which trampoline variant fits. Every choice carries its reason.
 */
import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { functionAfter } from '../analyze/function-index.js';
import { flagsLiveAfter } from '../analyze/flags-live-after.js';
import { r11LiveAfter } from '../analyze/r11-live-after.js';
import { ALL_SCRATCH, scratchLiveAfter, scratchNames } from '../analyze/scratch-live-after.js';
import type { NativeCall, Recipe, Site, Variant } from '../model.js';
import type { StubShape } from '../compile/stubs.js';
import type { Displacement, DisplacementFinder } from '../compile/displace.js';
import { NR_CLONE, NR_CLONE3, NR_RT_SIGRETURN, NR_VFORK, type NativeRouting } from '../compile/site-code.js';

/** The concrete form a variant takes at one site (abs64 becomes a near hop on short sites). */
export type SiteForm = 'rel32' | 'rel32-site' | 'abs64' | 'abs64-hop' | 'trap' | 'displace';

export interface SiteDecision {
  site: Site;
  index: number;
  resumeVa: bigint;
  routing: NativeRouting;
  shape: StubShape;
  relaxations: string[];
  /** The chosen variant and its form, or undefined when refused. */
  variant?: Variant;
  form?: SiteForm;
  displacement?: Displacement;
  reason: string;
}

const NATIVE_NUMBERS: Record<NativeCall, number> = {
  rt_sigreturn: NR_RT_SIGRETURN,
  clone: NR_CLONE,
  vfork: NR_VFORK,
  clone3: NR_CLONE3,
};

export interface DecideContext {
  elf: ElfFile;
  recipe: Recipe;
  /** Whether the output can hold absolute addresses of its own code (not position-independent). */
  absoluteOk: boolean;
  /** Whether the entry routes calls itself (slot, pointer): the ABI is then the LibOS's business. */
  entryOwnsAbi: boolean;
  /** Whether the fast stub calls a C handler (which may change rdi, rsi, rdx, r8, r9, r10). */
  cHandler?: boolean;
  /**
   * Why calls and returns in this file may not follow the SysV ABI (a Go binary: its register ABI
   * passes arguments and results in rdi, rsi, r8-r11 too), so that the register proofs, which
   * trust it there, are not made; undefined when they may be.
   */
  notSysV?: string;
  /** Whether a trap runtime can be installed in this file. */
  trapAvailable: string | true;
  displacer: DisplacementFinder;
  /** variantOrder(recipe), made once for the plan rather than once a site. */
  variants: readonly Variant[];
}

/** `notBefore`: the end of the previous site's patch, which this site's window must not reach back over. */
export function decideSite(ctx: DecideContext, site: Site, index: number, notBefore?: bigint): SiteDecision {
  const { recipe } = ctx;
  const resumeVa = site.va + BigInt(site.room);
  const routing = routingFor(recipe.native, site);
  const { shape, relaxations, notes } = shapeFor(ctx, site, resumeVa);
  const base = { site, index, resumeVa, routing, shape, relaxations };
  if (site.instruction !== 'syscall') {
    return { ...base, reason: `${site.instruction} uses the 32-bit system call ABI: reported, not patched` };
  }
  const order = ctx.variants;
  const misses: string[] = [];
  for (const variant of order) {
    const fit = fits(ctx, variant, site, notBefore);
    if (typeof fit === 'string') {
      misses.push(fit);
      continue;
    }
    const why = [`${site.rule}`, `${variant}: ${fit.why}`];
    if (misses.length > 0) why.push(`not ${misses.join('; not ')}`);
    if (variant !== 'trap') why.push(...notes);
    return { ...base, variant, form: fit.form, reason: why.join('; '), ...(fit.displacement !== undefined ? { displacement: fit.displacement } : {}) };
  }
  return { ...base, reason: `${site.rule}; refused: ${misses.join('; ')}` };
}

function fits(ctx: DecideContext, variant: Variant, site: Site, notBefore: bigint | undefined): { form: SiteForm; why: string; displacement?: Displacement } | string {
  const room = site.room;
  switch (variant) {
    case 'rel32':
      return room >= 12
        ? { form: 'rel32', why: `the seed's leaq+jmp sequence fits the ${room}-byte room` }
        : `rel32 (needs 12 bytes, the site has ${room})`;
    case 'rel32-site': {
      if (room >= 5) return { form: 'rel32-site', why: `a 5-byte jmp into the site's own trampoline fits the ${room}-byte room` };
      if (site.movVa !== undefined) {
        // gVisor's systrap pattern: the `mov $nr,%eax` decoded right before joins the site, and the
        // 5-byte jmp covers the 7 bytes; the mov runs first in the trampoline.
        const d = ctx.displacer.find(site, { backs: [1], ...(notBefore !== undefined ? { notBefore } : {}) });
        if (typeof d !== 'string') return { form: 'displace', displacement: d, why: `the mov $${site.syscallNr ?? '?'},%eax before it joins the site: a 5-byte jmp over the ${Number(d.windowEnd - d.windowStart)}-byte pair` };
        return `rel32-site (needs 5 bytes; with its mov: ${d})`;
      }
      return `rel32-site (needs 5 bytes, the site has ${room})`;
    }
    case 'abs64':
      if (!ctx.absoluteOk) return 'abs64 (an absolute address of the added code would be wrong after a position-independent file is relocated)';
      if (room >= 21) return { form: 'abs64', why: `leaq + jmp *0(%rip) + .quad fit the ${room}-byte room` };
      if (room >= 12) return { form: 'abs64-hop', why: `leaq + a near hop to an absolute jump (room ${room} < 21)` };
      return `abs64 (needs 12 bytes for the near hop, the site has ${room})`;
    case 'trap': {
      const need = ctx.recipe.trampoline.trapInstruction === 'ud2' ? 2 : 1;
      if (ctx.trapAvailable !== true) return `trap (${ctx.trapAvailable})`;
      return room >= need
        ? { form: 'trap', why: `${ctx.recipe.trampoline.trapInstruction} emulated by a signal handler (slow: microseconds a call)` }
        : `trap (needs ${need} bytes)`;
    }
    case 'displace': {
      if (room >= 5) return `displace (not needed: the site has ${room} bytes)`;
      const d = ctx.displacer.find(site, notBefore !== undefined ? { notBefore } : {});
      if (typeof d === 'string') return `displace (${d})`;
      const moved = [...d.before, ...d.after].map((m) => m.text).join('; ');
      return { form: 'displace', displacement: d, why: `moved ${moved} into the site's trampoline (window 0x${d.windowStart.toString(16)}-0x${d.windowEnd.toString(16)})` };
    }
  }
}

function routingFor(native: readonly NativeCall[], site: Site): NativeRouting {
  const nrs = native.map((n) => NATIVE_NUMBERS[n]);
  if (nrs.length === 0) return { kind: 'none' };
  if (site.syscallNr !== undefined) {
    if (!nrs.includes(site.syscallNr)) return { kind: 'none' };
    // clone is native only with a new stack or shared memory: that is checked at run time.
    if (site.syscallNr === NR_CLONE) return { kind: 'check', nrs: [NR_CLONE] };
    return { kind: 'always', nr: site.syscallNr };
  }
  return { kind: 'check', nrs };
}

function shapeFor(ctx: DecideContext, site: Site, resumeVa: bigint): { shape: StubShape; relaxations: string[]; notes: string[] } {
  const { abi, stub } = ctx.recipe;
  const relaxations: string[] = [];
  /** Savings that change nothing the program can see, for the reason. */
  const notes: string[] = [];
  // The function after the site, looked up once for the analyses below.
  let after: { function?: FunctionRange } | undefined;
  const afterSite = (): { function?: FunctionRange } => {
    if (after === undefined) {
      const fn = functionAfter(ctx.elf, resumeVa);
      after = fn !== undefined ? { function: fn } : {};
    }
    return after;
  };
  let flags: StubShape['flags'];
  if (ctx.entryOwnsAbi) {
    flags = 'preserve';
  } else if (abi.flags === 'clobber-if-dead') {
    const liveness = flagsLiveAfter(ctx.elf, resumeVa, afterSite());
    if (liveness.live) {
      flags = 'preserve';
    } else {
      flags = 'clobber';
      relaxations.push(`flags clobbered: dead after the site (${liveness.reason})`);
    }
  } else {
    flags = abi.flags;
    if (flags === 'clobber') relaxations.push('flags clobbered (recipe)');
  }
  if (!ctx.entryOwnsAbi && abi.redZone === 'unused') relaxations.push('red zone not skipped (recipe)');
  if (!ctx.entryOwnsAbi && abi.rcxR11 === 'clobber') relaxations.push('rcx/r11 not set as syscall leaves them (recipe)');
  // r11 = rflags costs the stub a pushfq: skipped where no path after the site reads r11.
  const proofs = !ctx.entryOwnsAbi && stub === 'fast' && abi.rcxR11 === 'syscall';
  if (proofs && ctx.notSysV !== undefined) notes.push(`r11 and the caller-saved registers kept at every site: ${ctx.notSysV}`);
  let r11Dead = false;
  if (proofs && ctx.notSysV === undefined) {
    const around = afterSite();
    const analysis = around.function !== undefined ? ctx.displacer.cachedAnalysis(around.function.start) : undefined;
    const liveness = r11LiveAfter(ctx.elf, resumeVa, analysis !== undefined ? { ...around, analysis } : around);
    if (!liveness.live) {
      r11Dead = true;
      notes.push(`r11 not set: no path reads it (${liveness.reason})`);
    }
  }
  // Around a C handler the stub saves six registers; only those the program may read count.
  let handlerSaves: number | undefined;
  if (ctx.cHandler === true && proofs && ctx.notSysV === undefined) {
    const liveness = scratchLiveAfter(ctx.elf, resumeVa, afterSite());
    if (liveness.live !== ALL_SCRATCH) {
      handlerSaves = liveness.live;
      notes.push(`handler call saves ${liveness.live === 0 ? 'no register' : scratchNames(liveness.live)}: ${liveness.reason}`);
    }
  }
  return {
    shape: {
      kind: stub, flags: stub === 'seed' ? 'preserve-all' : flags, redZone: abi.redZone, rcxR11: abi.rcxR11,
      ...(r11Dead ? { r11Dead } : {}), ...(handlerSaves !== undefined ? { handlerSaves } : {}),
    },
    relaxations,
    notes,
  };
}

function dedupe<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** The variants a recipe tries, in order, each once. */
export function variantOrder(recipe: Recipe): readonly Variant[] {
  return dedupe([...recipe.trampoline.prefer, ...recipe.trampoline.fallback]);
}
