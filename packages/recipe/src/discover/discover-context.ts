import type { ElfFile, FunctionRange, Section } from '@libos/elfkit';
import { SHF_ALLOC, SHT_NOBITS } from '@libos/elfkit';
import { type FunctionAnalysis, analyzeFunction } from '../analyze/analyze-function.js';
import { FunctionIndex, functionIndexOf } from '../analyze/function-index.js';
import type { DiscoverDiagnostic, FindSitesOptions, SiteReport } from './site-report.js';

/** State of one findSites call: the decoded functions, diagnostics and counters. */
export class DiscoverContext {
  readonly diagnostics: DiscoverDiagnostic[] = [];
  readonly stats: SiteReport['stats'] = { candidates: 0, confirmed: 0, functionsDecoded: 0, outsideFunctions: 0 };
  readonly analyses: Map<bigint, FunctionAnalysis>;
  private functionIndex: FunctionIndex | undefined;
  private allocSections: Section[] | undefined;

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
      analysis = analyzeFunction(this.elf, fn);
      this.analyses.set(fn.start, analysis);
      this.stats.functionsDecoded++;
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
