/**
 * Landing pads: where the unwinder lands in a function when an exception passes through it. Each
 * FDE of a C++ function points (its LSDA, "language-specific data") at a table in
 * .gcc_except_table whose call-site entries name the pads, as offsets from the function's start
 * or from an LPStart of the table's own. A rewrite that moves code must not move a pad: nothing
 * branches there that a decoder could see.
 */
import { ElfError } from '../errors.js';
import { PT_GNU_EH_FRAME, SHT_NOBITS } from '../model/constants.js';
import type { ElfFile, Section } from '../model/types.js';
import { Cursor } from './cursor.js';
import { EntryReader, sectionFdes, type Fde } from './read-eh-frame.js';

/** The landing pads of a file's exception tables. */
export interface LandingPads {
  /** Every landing pad's address, sorted and unique. */
  readonly pads: readonly bigint[];
  /** Functions (FDE ranges) whose exception table could not be read: their pads are unknown. */
  readonly unknown: readonly { readonly start: bigint; readonly end: bigint }[];
}

const OMIT = 0xff;
/** Call-site entries read over the whole file, at most: a multiple of the tables' size (+ a floor). */
const ENTRY_BUDGET_FACTOR = 4;
const ENTRY_BUDGET_FLOOR = 1 << 16;

const cache = new WeakMap<object, LandingPads>();

/** The landing pads of `elf` (read once per ElfFile). Malformed tables put their function in `unknown`. */
export function landingPads(elf: ElfFile): LandingPads {
  let found = cache.get(elf);
  if (found === undefined) cache.set(elf, (found = readLandingPads(elf)));
  return found;
}

/** Every address: the pads are unknown everywhere. */
const ALL_UNKNOWN: LandingPads = { pads: [], unknown: [{ start: 0n, end: 2n ** 64n - 1n }] };

/** `stats` (for tests): how many call-site entries were read in all. */
export function readLandingPads(elf: ElfFile, stats: { entriesRead: number } = { entriesRead: 0 }): LandingPads {
  const s = elf.section('.eh_frame');
  if (s === undefined) {
    // No section headers: functions come from the .eh_frame PT_GNU_EH_FRAME names, but no
    // .gcc_except_table can be found by name, so no pad is known.
    return elf.segments.some((p) => p.type === PT_GNU_EH_FRAME) ? ALL_UNKNOWN : { pads: [], unknown: [] };
  }
  if (s.size === 0 || s.type === SHT_NOBITS) return { pads: [], unknown: [] };
  const cursor = new Cursor(elf.bytes);
  let fdes: readonly Fde[];
  try {
    fdes = sectionFdes(elf, cursor, s);
  } catch (e) {
    // Functions may still come from the symbols: with no FDE read, no pad is known anywhere.
    if (e instanceof ElfError) return ALL_UNKNOWN;
    throw e;
  }
  const pads = new Set<bigint>();
  const unknown: { start: bigint; end: bigint }[] = [];
  const tables = elf.sections.filter((x) => x.type !== SHT_NOBITS && x.size > 0 && x.name === '.gcc_except_table');
  // Spent by every entry read, whether its table turns out readable or not: FDEs that all name
  // one long table with a bad last entry would otherwise read it once each.
  const budget = { left: ENTRY_BUDGET_FACTOR * tables.reduce((n, t) => n + t.size, 0) + ENTRY_BUDGET_FLOOR };
  for (const fde of fdes) {
    if (fde.lsda === undefined) continue;
    const read = fde.lsda === 'unreadable' ? undefined : callSitePads(elf, tables, cursor, fde, fde.lsda, budget, stats);
    if (read === undefined) {
      unknown.push({ start: fde.start, end: fde.end });
      continue;
    }
    for (const pad of read) pads.add(pad);
  }
  return { pads: [...pads].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), unknown };
}

/** The pads of one LSDA, or undefined when it cannot be read (or the entry budget has run out). */
function callSitePads(elf: ElfFile, tables: readonly Section[], cursor: Cursor, fde: Fde, lsdaVa: bigint, budget: { left: number }, stats: { entriesRead: number }): bigint[] | undefined {
  if (budget.left <= 0) return undefined;
  const offset = elf.vaToOffset(lsdaVa);
  if (offset === undefined) return undefined;
  // In .gcc_except_table, where compilers put them; anywhere else it counts as unreadable.
  const section = tables.find((x) => offset >= x.offset && offset < x.offset + x.size);
  if (section === undefined) return undefined;
  const r = new EntryReader(cursor, offset, section.offset + section.size, offset);
  const vaAt = (at: number): bigint => lsdaVa + BigInt(at - offset);
  try {
    let lpStart = fde.start;
    const lpStartEncoding = r.u8();
    if (lpStartEncoding !== OMIT) lpStart = r.pointer(lpStartEncoding, vaAt(r.at), true);
    if (r.u8() !== OMIT) r.uleb(); // the type table's offset: not needed for the pads
    const callSiteEncoding = r.u8();
    const length = r.ulebNumber();
    const end = r.at + length;
    if (end > section.offset + section.size) return undefined;
    const pads: bigint[] = [];
    // The call-site table alone: an entry running past it is malformed.
    const t = new EntryReader(cursor, r.at, end, offset);
    // Call-site fields are offsets, read as they are (no pc-relative base).
    const field = (): bigint => t.pointer(callSiteEncoding & 0x0f, 0n, false);
    while (t.at < end) {
      if (budget.left-- <= 0) return undefined;
      stats.entriesRead++;
      field(); // start of the call site
      field(); // its length
      const pad = field();
      t.uleb(); // the action
      if (pad !== 0n) pads.push(BigInt.asUintN(64, lpStart + pad));
    }
    return pads;
  } catch (e) {
    if (e instanceof ElfError) return undefined;
    throw e;
  }
}
