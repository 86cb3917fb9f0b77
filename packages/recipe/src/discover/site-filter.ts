import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { type FunctionAnalysis, instructionIndexAt } from '../analyze/analyze-function.js';
import { type SyscallNumberSource, findSyscallNumber } from '../analyze/syscall-number.js';
import type { MatchRule, SiteInstruction, SyscallFilter } from '../model.js';
import { syscallNumber } from '../syscalls/x86-64.js';
import { passesNameFilter } from './name-filter.js';
import type { DiscoverDiagnostic } from './site-report.js';

/** A site some rule's source produced, before the rule's context conditions are checked. */
export interface RawSite {
  va: bigint;
  offset: number;
  instruction: SiteInstruction;
  length: number;
  room: number;
  section: string;
  fn?: FunctionRange;
  /** The enclosing function decoded, when there is one and the site is on one of its boundaries. */
  analysis?: FunctionAnalysis;
  /** Filled on first use: the static syscall number and where it came from (null: not known). */
  number?: SyscallNumberSource | null;
}

/** The syscall number facts of `raw`, computed once. */
export function numberOf(elf: Pick<ElfFile, 'bytes'>, raw: RawSite): SyscallNumberSource | undefined {
  if (raw.number === undefined) {
    raw.number = (raw.analysis && instructionIndexAt(raw.analysis, raw.va) >= 0 && findSyscallNumber(elf, raw.analysis, raw.va)) || null;
  }
  return raw.number ?? undefined;
}

/** A rule's syscall filter with names resolved to numbers. */
export interface ResolvedSyscalls {
  include?: Set<number>;
  exclude?: Set<number>;
}

/** Resolves names through the x86-64 table; unknown names are reported and left out. */
export function resolveSyscalls(filter: SyscallFilter | undefined, label: string, diagnostics: DiscoverDiagnostic[]): ResolvedSyscalls | undefined {
  if (filter === undefined) return undefined;
  const resolve = (list: (number | string)[] | undefined): Set<number> | undefined => {
    if (list === undefined) return undefined;
    const out = new Set<number>();
    for (const item of list) {
      const nr = typeof item === 'number' ? item : syscallNumber(item);
      if (nr === undefined) diagnostics.push({ code: 'DISCOVER_UNKNOWN_SYSCALL', message: `${label}: no x86-64 system call is named '${String(item)}'` });
      else out.add(nr);
    }
    return out;
  };
  const include = resolve(filter.include);
  const exclude = resolve(filter.exclude);
  return { ...(include ? { include } : {}), ...(exclude ? { exclude } : {}) };
}

/**
 * Whether `raw` meets the rule's context conditions: section and symbol globs, NOP padding, a decoded
 * `mov $nr,%eax` right before, and the syscall filter. A site whose number is not known statically
 * fails an include list (it cannot be shown to be one of them) and passes an exclude list (it cannot be
 * shown to be one of them either; the planner's run-time checks handle calls that must stay native).
 */
export function passesRule(elf: Pick<ElfFile, 'bytes'>, raw: RawSite, rule: MatchRule, syscalls: ResolvedSyscalls | undefined): boolean {
  if (!passesNameFilter(rule.sections, raw.section)) return false;
  if (!passesNameFilter(rule.symbols, raw.fn?.name)) return false;
  if (rule.padding !== undefined && raw.room - raw.length < rule.padding) return false;
  if (rule.precededBy === 'mov-eax-imm' && numberOf(elf, raw)?.movEaxImmediatelyBefore !== true) return false;
  if (syscalls !== undefined) {
    const nr = numberOf(elf, raw)?.nr;
    if (syscalls.include !== undefined && (nr === undefined || !syscalls.include.has(nr))) return false;
    if (syscalls.exclude !== undefined && nr !== undefined && syscalls.exclude.has(nr)) return false;
  }
  return true;
}
