import { DT_NULL, DYN_SIZE, PT_DYNAMIC, SHT_DYNAMIC } from '../model/constants.js';
import type { DynamicEntry, Section, Segment } from '../model/types.js';
import type { Cursor } from './cursor.js';
import { tableCount } from './read-symbols.js';

/**
 * Reads the dynamic section (or, without section headers, the PT_DYNAMIC segment) up to DT_NULL.
 */
export function readDynamic(c: Cursor, sections: readonly Section[], segments: readonly Segment[]): DynamicEntry[] {
  let offset: number;
  let count: number;
  const s = sections.find((x) => x.type === SHT_DYNAMIC);
  if (s !== undefined) {
    offset = s.offset;
    count = tableCount(s, DYN_SIZE);
  } else {
    const p = segments.find((x) => x.type === PT_DYNAMIC);
    if (p === undefined) return [];
    offset = p.offset;
    count = Math.floor(p.filesz / DYN_SIZE);
  }
  const out: DynamicEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = offset + i * DYN_SIZE;
    const tag = Number(c.i64(at));
    if (tag === DT_NULL) break;
    out.push({ tag, value: c.u64(at + 8) });
  }
  return out;
}
