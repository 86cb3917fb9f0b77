import type { FunctionAnalysis } from '../analyze/analyze-function.js';
import type { Site } from '../model.js';

/** What discovery noticed but did not turn into a site. */
export type DiscoverDiagnosticCode =
  /** A rule names neither or both of `annotation` and `instruction`, or an unknown annotation table. */
  | 'DISCOVER_RULE_INVALID'
  /** The annotation table the rule names is not in the file, or could not be read. */
  | 'DISCOVER_ANNOTATION_TABLE'
  /** An annotated site whose bytes are not `0f 05` (not patched). */
  | 'DISCOVER_ANNOTATION_NOT_SYSCALL'
  /** An annotated site outside the file's bytes. */
  | 'DISCOVER_ANNOTATION_UNMAPPED'
  /** An annotated site followed by fewer NOP bytes than its table entry says (room is what is really there). */
  | 'DISCOVER_ANNOTATION_SHORT'
  /** An annotated site that decoding its function does not find on an instruction boundary. */
  | 'DISCOVER_ANNOTATION_MISALIGNED'
  /** Byte pairs `0f 05` / `0f 34` / `cd 80` in executable sections but in no known function (data, or no symbols or FDEs). */
  | 'DISCOVER_OUTSIDE_FUNCTION'
  /** A function with a candidate holds undecodable bytes: candidates after them are not trusted. */
  | 'DISCOVER_UNDECODABLE'
  /** A function with a candidate could not be decoded (not file-backed). */
  | 'DISCOVER_FUNCTION_UNMAPPED'
  /** Function ranges overlap so much that decoding each would take far more than the file's code: the rest are not decoded, their candidates not trusted. */
  | 'DISCOVER_DECODE_BUDGET'
  /** Instruction rules need function ranges in linked files; a relocatable object has none usable. */
  | 'DISCOVER_RELOCATABLE'
  /** elf.functions() failed (a malformed .eh_frame): instruction rules find nothing. */
  | 'DISCOVER_FUNCTIONS_UNREADABLE'
  /** A syscall name in a rule's filter is not in the x86-64 table. */
  | 'DISCOVER_UNKNOWN_SYSCALL';

/** Something discovery noticed, at `va` where there is one. */
export interface DiscoverDiagnostic {
  code: DiscoverDiagnosticCode;
  va?: bigint;
  message: string;
}

/** What findSites returns: the sites, the 32-bit entries it only reports, diagnostics and counters. */
export interface SiteReport {
  /** Sites to patch, sorted by va, each found by the first rule (in recipe order) that matched it. */
  sites: Site[];
  /** `int $0x80` and `sysenter` sites (32-bit ABI): reported, never patched. Sorted by va. */
  reported: Site[];
  diagnostics: DiscoverDiagnostic[];
  /** The functions this call decoded, by start: planPatches reuses them instead of decoding again. */
  analyses?: Map<bigint, FunctionAnalysis>;
  stats: {
    /** `0f 05`, `0f 34` and `cd 80` byte pairs in executable sections. */
    candidates: number;
    /** Candidates that decoding from their function's start confirmed as instructions. */
    confirmed: number;
    /** Functions decoded by this call (cache hits not counted). */
    functionsDecoded: number;
    /** Candidates in no known function. */
    outsideFunctions: number;
  };
}

/** Options of findSites. */
export interface FindSitesOptions {
  /**
   * Function analyses by function start, shared between calls (the planner can reuse them);
   * findSites adds the functions it decodes.
   */
  analyses?: Map<bigint, FunctionAnalysis>;
}
