/**
 * The data that flows through the recipe engine: a validated Recipe, the Sites found in a binary,
 * and the PatchPlan compiled from both. Every stage is a function from these values to these values.
 */

/** Trampoline variants, in the order a recipe may prefer them. */
export type Variant =
  /** The seed's call-site sequence: `leaq ret(%rip),%rcx; jmp rel32 <shared stub>` (12 bytes). */
  | 'rel32'
  /** `jmp rel32` into a trampoline of the site's own that knows its return address (5 bytes). */
  | 'rel32-site'
  /** `leaq ret(%rip),%rcx; jmp *0(%rip); .quad stub` (21 bytes), or a near hop where the site is short. */
  | 'abs64'
  /** Neighbouring instructions moved into the site's trampoline to make room for a `jmp rel32`. */
  | 'displace'
  /** A trapping instruction (ud2 or int3) emulated by a signal handler: the last resort. */
  | 'trap';

export type FlagsPolicy = 'preserve' | 'preserve-all' | 'clobber' | 'clobber-if-dead';
export type RedZonePolicy = 'preserve' | 'unused';
export type VectorPolicy = 'preserve' | 'clobber';
/**
 * syscall: rcx = return address and r11 = rflags wherever the program can read them (r11 is left
 * unset where decoding proves no path reads it first); exact: set at every site; clobber: whatever.
 */
export type RcxR11Policy = 'syscall' | 'exact' | 'clobber';
export type StubKind = 'fast' | 'seed';

export type Entry =
  | { kind: 'passthrough' }
  | { kind: 'trace' }
  | { kind: 'handler'; source: string }          // a C source or object file path (resolved against the recipe's folder)
  | { kind: 'symbol'; name: string }
  | { kind: 'address'; va: bigint }
  | { kind: 'slot'; segment: 'fs' | 'gs'; offset: number }
  | { kind: 'pointer'; symbol: string };

/** Calls made natively at the site, never through a stack-keeping stub. */
export type NativeCall = 'rt_sigreturn' | 'vfork' | 'clone' | 'clone3';

export interface NameFilter {
  include?: string[];   // globs
  exclude?: string[];
}

export interface SyscallFilter {
  include?: (number | string)[];   // numbers or names (x86-64 table)
  exclude?: (number | string)[];
}

/** One site-matching rule. Exactly one of `annotation` / `instruction` says where candidates come from. */
export interface MatchRule {
  annotation?: string;                 // section name: '.libos.instructions.syscall' or '.libos.instructions.syscall.pcrel'
  instruction?: 'syscall';             // decoded `syscall` instructions inside function ranges
  padding?: number;                    // at least this many NOP bytes right after the syscall
  precededBy?: 'mov-eax-imm';          // `mov $nr,%eax` immediately before, confirmed by decoding
  sections?: NameFilter;
  symbols?: NameFilter;
  syscalls?: SyscallFilter;
}

export interface Recipe {
  name: string;
  description: string;
  /** Where the recipe came from, for messages: a path or `builtin:<name>`. */
  source: string;
  match: MatchRule[];
  trampoline: { prefer: Variant[]; fallback: Variant[]; trapInstruction: 'ud2' | 'int3' };
  abi: { flags: FlagsPolicy; redZone: RedZonePolicy; vectorState: VectorPolicy; rcxR11: RcxR11Policy };
  stub: StubKind;
  entry: Entry;
  native: NativeCall[];
}

export type SiteInstruction = 'syscall' | 'sysenter' | 'int80';

/** A place in the binary where a system call instruction sits. */
export interface Site {
  va: bigint;
  offset: number;              // file offset of the instruction
  length: number;              // length of the instruction itself (2 for syscall)
  /** Bytes the site owns: the instruction plus the NOP padding after it (the seed's sites have 12). */
  room: number;
  instruction: SiteInstruction;
  section: string;
  symbol?: string;             // the enclosing function's name, if known
  functionStart?: bigint;
  functionEnd?: bigint;
  /** Which rule found it: `match[0]: annotation .libos.instructions.syscall`. */
  rule: string;
  ruleIndex: number;
  /** The syscall number where it is known statically (a decoded `mov $nr,%eax` right before). */
  syscallNr?: number;
  /** Start of the `mov $nr,%eax` instruction when precededBy matched. */
  movVa?: bigint;
}
