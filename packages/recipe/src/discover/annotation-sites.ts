import { ANNOTATION_SECTION_PCREL, ANNOTATION_SECTION_QUAD } from '@libos/elfkit';
import type { SyscallAnnotation } from '@libos/elfkit';
import { instructionIndexAt } from '../analyze/analyze-function.js';
import { createDecoder, hex, isNop, scratch } from '../analyze/iced.js';
import type { DiscoverContext } from './discover-context.js';
import type { RawSite } from './site-filter.js';

/** Annotation tables a rule may name, and the form elfkit reports for each. */
export const ANNOTATION_TABLES: Readonly<Record<string, SyscallAnnotation['form']>> = {
  [ANNOTATION_SECTION_QUAD]: 'quad',
  [ANNOTATION_SECTION_PCREL]: 'pcrel',
};

/**
 * The sites an annotation table lists, each checked against the bytes: `0f 05` at the site, and room
 * = 2 + the NOP bytes that really follow (decoded, up to the entry's length). Entries that fail the
 * check become diagnostics, never sites.
 */
export function annotationSites(ctx: DiscoverContext, table: string, annotations: readonly SyscallAnnotation[]): RawSite[] {
  const { elf, diagnostics } = ctx;
  const form = ANNOTATION_TABLES[table];
  const entries = annotations.filter((a) => a.form === form);
  if (entries.length === 0) {
    diagnostics.push({
      code: 'DISCOVER_ANNOTATION_TABLE',
      message: elf.section(table) === undefined ? `the file has no ${table} section` : `${table} lists no sites`,
    });
    return [];
  }
  const bytes = elf.bytes;
  const out: RawSite[] = [];
  for (const a of entries) {
    // In a .o the entry gives an offset into section `a.section`; elsewhere a va.
    const holder = a.section !== undefined ? elf.sections[a.section] : undefined;
    const offset = holder !== undefined ? holder.offset + Number(a.site) : elf.vaToOffset(a.site);
    if (offset === undefined || offset < 0 || offset + 2 > bytes.length) {
      diagnostics.push({ code: 'DISCOVER_ANNOTATION_UNMAPPED', va: a.site, message: `annotated site ${hex(a.site)} is not in the file` });
      continue;
    }
    if (bytes[offset] !== 0x0f || bytes[offset + 1] !== 0x05) {
      const found = Array.from(bytes.subarray(offset, offset + 2), (b) => b.toString(16).padStart(2, '0')).join(' ');
      diagnostics.push({ code: 'DISCOVER_ANNOTATION_NOT_SYSCALL', va: a.site, message: `annotated site ${hex(a.site)} holds ${found}, not syscall (0f 05): not patched` });
      continue;
    }
    const room = 2 + nopBytes(bytes.subarray(offset + 2, Math.min(bytes.length, offset + Math.max(a.length, 2))));
    if (room < a.length) {
      diagnostics.push({ code: 'DISCOVER_ANNOTATION_SHORT', va: a.site, message: `annotated site ${hex(a.site)} claims ${a.length} bytes but only ${room} are syscall and NOPs` });
    }
    const raw: RawSite = {
      va: a.site, offset, instruction: 'syscall', length: 2, room,
      section: holder !== undefined ? holder.name : ctx.sectionNameAt(a.site),
    };
    if (elf.kind !== 'relocatable') {
      const fn = ctx.functions.containing(a.site);
      if (fn !== undefined) {
        raw.fn = fn;
        const analysis = ctx.analysisOf(fn);
        if (analysis.error === undefined) {
          if (instructionIndexAt(analysis, a.site) >= 0) raw.analysis = analysis;
          else diagnostics.push({ code: 'DISCOVER_ANNOTATION_MISALIGNED', va: a.site, message: `annotated site ${hex(a.site)} is not an instruction boundary when ${fn.name ?? hex(fn.start)} is decoded from its start` });
        }
      }
    }
    out.push(raw);
  }
  return out;
}

/** Bytes of whole NOP instructions at the start of `window`. */
function nopBytes(window: Uint8Array): number {
  if (window.length === 0) return 0;
  const decoder = createDecoder(window);
  try {
    let n = 0;
    while (n < window.length) {
      decoder.decodeOut(scratch);
      const length = scratch.length;
      if (!isNop(scratch, scratch.code) || n + length > window.length) break;
      n += length;
    }
    return n;
  } finally {
    decoder.free();
  }
}
