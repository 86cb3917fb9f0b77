import type { ElfFile, FunctionRange, Section } from '@libos/elfkit';
import { PF_X, PT_LOAD, SHF_ALLOC, SHT_NOBITS } from '@libos/elfkit';
import { type FunctionAnalysis, analyzeFunction, undecodedFunction } from '../analyze/analyze-function.js';
import { FunctionIndex, functionIndexOf } from '../analyze/function-index.js';
import { executableSections } from './scan-candidates.js';
import type { DiscoverDiagnostic, FindSitesOptions, SiteReport } from './site-report.js';

const DECODE_BUDGET_FACTOR = 8;
const DECODE_BUDGET_FLOOR = 1 << 20;

/** Bytes of the file's executable sections. */
function executableBytes(elf: ElfFile): number {
  let n = 0;
  for (const s of executableSections(elf)) n += s.size;
  // A file without section headers: its executable segments.
  if (n === 0) for (const p of elf.segments) if (p.type === PT_LOAD && (p.flags & PF_X) !== 0) n += p.filesz;
  return n;
}

/** State of one findSites call: the decoded functions, diagnostics and counters. */
export class DiscoverContext {
  readonly diagnostics: DiscoverDiagnostic[] = [];
  readonly stats: SiteReport['stats'] = { candidates: 0, confirmed: 0, functionsDecoded: 0, outsideFunctions: 0 };
  readonly analyses: Map<bigint, FunctionAnalysis>;
  private functionIndex: FunctionIndex | undefined;
  private allocSections: Section[] | undefined;
  /**
   * Bytes of functions still to decode: a few times the file's executable bytes. Each function with
   * a candidate is decoded whole; ranges that overlap (10,000 symbols each running to the end of
   * .text, FDEs stretched over one another) would decode the same code thousands of times.
   */
  private decodeBudget: number | undefined;

  constructor(readonly elf: ElfFile, options: FindSitesOptions) {
    this.analyses = options.analyses ?? new Map();
  }

  /** The function ranges; a file whose ranges cannot be read gets an empty index and a diagnostic. */
  get functions(): FunctionIndex {
    if (this.functionIndex === undefined) {
      try {
        this.functionIndex = functionIndexOf(this.elf);
      } catch (e) {
        this.diagnostics.push({ code: 'DISCOVER_FUNCTIONS_UNREADABLE', message: `function ranges cannot be read: ${(e as Error).message}` });
        this.functionIndex = new FunctionIndex([]);
      }
    }
    return this.functionIndex;
  }

  /** The analysis of `fn`, decoding it only the first time (per call, or per shared cache). */
  analysisOf(fn: FunctionRange): FunctionAnalysis {
    let analysis = this.analyses.get(fn.start);
    if (analysis === undefined || analysis.end !== fn.end) {
      this.decodeBudget ??= DECODE_BUDGET_FACTOR * executableBytes(this.elf) + DECODE_BUDGET_FLOOR;
      const size = Number(fn.end - fn.start);
      if (size > this.decodeBudget) {
        analysis = undecodedFunction(fn, 'ANALYZE_BUDGET', `the function ranges overlap so much that decoding them all would take more than ${DECODE_BUDGET_FACTOR} times the file's code: ${fn.name ?? `0x${fn.start.toString(16)}`} is not decoded`);
      } else {
        this.decodeBudget -= Math.max(size, 0);
        analysis = analyzeFunction(this.elf, fn);
        this.stats.functionsDecoded++;
      }
      this.analyses.set(fn.start, analysis);
    }
    return analysis;
  }

  /** Name of the allocated section that holds `va` ('' when none does). */
  sectionNameAt(va: bigint): string {
    this.allocSections ??= this.elf.sections.filter((s) => (s.flags & SHF_ALLOC) !== 0n && s.type !== SHT_NOBITS && s.size > 0);
    for (const s of this.allocSections) if (va >= s.va && va < s.va + BigInt(s.size)) return s.name;
    return '';
  }
}
