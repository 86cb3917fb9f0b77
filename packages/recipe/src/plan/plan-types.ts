import type { Entry, Variant } from '../model.js';

/** Version tag of the serialised plan; bump on any incompatible change. */
export const PLAN_SCHEMA = 'libos-patch/plan@1';

/** One in-place change at a site: the bytes the input holds and the bytes that replace them. */
export interface Patch {
  /** Index of the site in the plan's site list (sorted by va). */
  site: number;
  /** The syscall instruction's address. */
  siteVa: bigint;
  /** Where the patch starts: the site, or the first instruction of a displaced window before it. */
  va: bigint;
  offset: number;
  before: Uint8Array;
  after: Uint8Array;
  variant: Variant;
  /** ABI relaxations applied at this site, e.g. `flags: clobbered (dead: written by cmp at 0x...)`. */
  relaxations: string[];
  /** Why this variant: the rule that found the site and what made the variant fit. */
  reason: string;
  rule: string;
  /** Entry point of the site's own trampoline, when it has one. */
  trampolineVa?: bigint;
  /** Where execution resumes after the intercepted call. */
  resumeVa: bigint;
  syscallNr?: number;
}

/** A site the plan leaves as it is, and why. */
export interface Refusal {
  site: number;
  va: bigint;
  rule: string;
  reason: string;
}

/** A symbol for added code, so objdump and gdb name it. */
export interface PlanSymbol {
  name: string;
  va: bigint;
  size: number;
  type: 'func' | 'object';
}

/** A new loadable segment holding trampolines, stubs, entry code or their data. */
export interface PlanSegment {
  name: string;           // section name: .libos.text, .libos.data
  va: bigint;
  flags: 'rx' | 'rw' | 'r';
  bytes: Uint8Array;
  /** Memory size when larger than the bytes (zero-filled .bss). */
  memsz: number;
}

/** A reference the plan could not resolve itself (left for a loader or another rewriter). */
export interface PlanRelocation {
  segment: string;
  offset: number;         // offset within the segment's bytes
  type: 'pc32' | 'abs64';
  symbol: string;
  addend: bigint;
}

export interface PlanStats {
  sites: number;
  patched: number;
  refused: number;
  reported: number;
  byVariant: Partial<Record<Variant, number>>;
  relaxations: Record<string, number>;
  bytesAdded: number;
}

/** The engine's output: every byte it will change and every byte it will add, with reasons. */
export interface PatchPlan {
  schema: typeof PLAN_SCHEMA;
  input: { size: number; sha256: string; buildId?: string; kind: string };
  recipe: { name: string; source: string };
  entry: Entry;
  /** What decoding the entry showed, where the fast stubs keep less for it or copy it in. */
  entryAnalysis?: string;
  patches: Patch[];
  refused: Refusal[];
  segments: PlanSegment[];
  symbols: PlanSymbol[];
  relocations: PlanRelocation[];
  /** New e_entry, when a start stub runs first (the trap runtime, in an executable). */
  entryPoint?: bigint;
  /** In a shared library, the initializer pointer redirected to the trap runtime's start stub. */
  startupPatch?: {
    kind: 'dt-init' | 'init-array-rela' | 'init-array-relr';
    offset: number;
    before: Uint8Array;
    after: Uint8Array;
    originalVa: bigint;
    reason: string;
  };
  /** CFI for the added code, as a .debug_frame section. */
  debugFrame?: Uint8Array;
  stats: PlanStats;
}
