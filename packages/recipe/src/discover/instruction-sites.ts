import { type FunctionAnalysis, InstructionKind, instructionIndexAt, isBranchTarget } from '../analyze/analyze-function.js';
import { hex } from '../analyze/iced.js';
import type { SiteInstruction } from '../model.js';
import type { DiscoverContext } from './discover-context.js';
import { executableSections, scanCandidates } from './scan-candidates.js';
import type { RawSite } from './site-filter.js';

/** The longest gap between known functions that is decoded as code (see instructionSites). */
const MAX_BRIDGED_GAP = 64;

const KIND_OF: Record<SiteInstruction, number> = {
  syscall: InstructionKind.syscall,
  sysenter: InstructionKind.sysenter,
  int80: InstructionKind.int80,
};

/**
 * `syscall`, `sysenter` and `int $0x80` instructions: byte pairs found by search, each confirmed by
 * decoding its enclosing function from the start (each function at most once). A pair in no known
 * function, or not on a decoded boundary, is not a site.
 */
export function instructionSites(ctx: DiscoverContext): RawSite[] {
  const { elf, diagnostics, stats } = ctx;
  if (elf.kind === 'relocatable') {
    diagnostics.push({ code: 'DISCOVER_RELOCATABLE', message: 'instruction rules need a linked file: a relocatable object has no function addresses to decode from' });
    return [];
  }
  const candidates = scanCandidates(elf, executableSections(elf));
  stats.candidates += candidates.length;
  const out: RawSite[] = [];
  const complained = new Set<bigint>();
  let firstOutside: bigint | undefined;
  let outside = 0;
  for (const c of candidates) {
    let fn = ctx.functions.containing(c.va);
    let analysis: FunctionAnalysis | undefined;
    if (fn === undefined) {
      // glibc's clone and clone3 end their FDE right before the syscall (the child must not unwind
      // into the parent), leaving a few bytes of code between two ranges. A short gap is taken as code
      // only if it decodes cleanly from the previous range's end exactly onto the next range's start;
      // data between functions (node's OpenSSL tables) spans kilobytes and is never decoded.
      fn = ctx.functions.gapAround(c.va, MAX_BRIDGED_GAP);
      analysis = fn && ctx.analysisOf(fn);
      if (fn === undefined || analysis === undefined || !decodesCleanly(analysis)) {
        outside++;
        firstOutside ??= c.va;
        continue;
      }
    }
    analysis ??= ctx.analysisOf(fn);
    if (analysis.error !== undefined) {
      if (!complained.has(fn.start)) {
        const code = analysis.error.code === 'ANALYZE_BUDGET' ? 'DISCOVER_DECODE_BUDGET' : 'DISCOVER_FUNCTION_UNMAPPED';
        diagnostics.push({ code, va: fn.start, message: analysis.error.message });
      }
      complained.add(fn.start);
      continue;
    }
    if (analysis.firstInvalid >= 0 && c.va > analysis.start + BigInt(analysis.firstInvalid)) {
      if (!complained.has(fn.start)) {
        diagnostics.push({
          code: 'DISCOVER_UNDECODABLE', va: analysis.start + BigInt(analysis.firstInvalid),
          message: `${fn.name ?? hex(fn.start)} holds undecodable bytes at ${hex(analysis.start + BigInt(analysis.firstInvalid))}: its ${c.instruction} at ${hex(c.va)} is not trusted`,
        });
      }
      complained.add(fn.start);
      continue;
    }
    const index = instructionIndexAt(analysis, c.va);
    if (index < 0 || analysis.kinds[index] !== KIND_OF[c.instruction]) continue;
    stats.confirmed++;
    out.push({
      va: c.va, offset: c.offset, instruction: c.instruction, length: 2,
      room: c.instruction === 'syscall' ? 2 + paddingAfter(analysis, index) : 2,
      section: c.section.name, fn, analysis,
    });
  }
  stats.outsideFunctions += outside;
  if (outside > 0) {
    diagnostics.push({
      code: 'DISCOVER_OUTSIDE_FUNCTION', ...(firstOutside !== undefined ? { va: firstOutside } : {}),
      message: `${outside} candidate byte pair(s) in executable sections lie in no known function (first at ${hex(firstOutside ?? 0n)}): not sites` +
        (ctx.functions.functions.length === 0 ? '; the file has no function symbols and no .eh_frame' : ''),
    });
  }
  return out;
}

/** Whether the whole range decoded without undecodable bytes and its last instruction ends at its end. */
function decodesCleanly(analysis: FunctionAnalysis): boolean {
  const last = analysis.count - 1;
  return analysis.error === undefined && analysis.firstInvalid < 0 && last >= 0 &&
    (analysis.starts[last] as number) + (analysis.lengths[last] as number) === Number(analysis.end - analysis.start);
}

/** NOP bytes right after instruction `index`, up to the first non-NOP, branch target or function end. */
export function paddingAfter(analysis: FunctionAnalysis, index: number): number {
  let bytes = 0;
  for (let i = index + 1; i < analysis.count && analysis.kinds[i] === InstructionKind.nop; i++) {
    if (isBranchTarget(analysis, analysis.start + BigInt(analysis.starts[i] as number))) break;
    bytes += analysis.lengths[i] as number;
  }
  return bytes;
}
