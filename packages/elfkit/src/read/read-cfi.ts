/**
 * Call-frame information at one address: runs the CIE's and FDE's DW_CFA instructions of the
 * .eh_frame entry that covers `va` up to `va`, and returns the row (how to find the CFA and each
 * saved register). Used to give added code the unwind rules of the code it stands in for.
 */
import { ElfError } from '../errors.js';
import { SHT_NOBITS } from '../model/constants.js';
import type { ElfFile } from '../model/types.js';
import { Cursor } from './cursor.js';
import { EntryReader, sectionFdes, type Fde } from './read-eh-frame.js';

/** How to find a register's value in the caller, as DWARF says it. */
export type CfiRule =
  | { kind: 'offset'; offset: number }          // saved at CFA + offset
  | { kind: 'val-offset'; offset: number }      // the value is CFA + offset
  | { kind: 'register'; register: number }      // in another register
  | { kind: 'expression'; expression: Uint8Array }
  | { kind: 'val-expression'; expression: Uint8Array }
  | { kind: 'undefined' }
  | { kind: 'same' };

export interface CfiRow {
  /** The FDE's start (the function's, one byte early for a signal frame). */
  fdeStart: bigint;
  cfa: { register: number; offset: number } | { expression: Uint8Array };
  /** DWARF register number -> rule; registers not listed keep the CIE's default (same value). */
  registers: Map<number, CfiRule>;
  returnAddressRegister: number;
}

interface FrameIndex {
  /** FDEs sorted by start address. */
  fdes: Fde[];
  cursor: Cursor;
  /** va - file offset of .eh_frame, for DW_CFA_set_loc's pc-relative encodings. */
  vaBias: bigint;
  /** Each FDE's rows, built on its first query. */
  rows: Map<Fde, FdeRows>;
}

/**
 * One FDE's table: rows[i] holds from locs[i] up to locs[i + 1] (the last one to the FDE's end, or
 * to `failure.loc`, where the instructions stop making sense and every query fails with `error`).
 */
interface FdeRows {
  locs: bigint[];
  rows: Pick<CfiRow, 'cfa' | 'registers'>[];
  failure?: { loc: bigint; error: ElfError };
}

const cache = new WeakMap<ElfFile, FrameIndex>();

// Register rules a row table may copy: per byte of the FDE's instructions, plus a floor. gcc's
// FDEs copy a few rules per byte at most.
const ROW_COPY_BUDGET_FACTOR = 16;
const ROW_COPY_BUDGET_FLOOR = 4096;

/** The unwind row at `va`, or undefined when no .eh_frame FDE covers it. Throws ElfError on a malformed entry. */
export function cfiRowAt(elf: ElfFile, va: bigint): CfiRow | undefined {
  let index = cache.get(elf);
  if (index === undefined) {
    index = indexEhFrame(elf);
    cache.set(elf, index);
  }
  const { fdes } = index;
  let lo = 0;
  let hi = fdes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fdes[mid]!.end <= va) lo = mid + 1;
    else hi = mid;
  }
  const fde = fdes[lo];
  if (fde === undefined || va < fde.start || va >= fde.end) return undefined;
  // A rewrite asks for several rows of the same FDE (at a site, before and after it): its whole
  // table is built once, and each answer is a copy of one of its rows.
  let table = index.rows.get(fde);
  if (table === undefined) {
    table = rowsOf(index, fde);
    index.rows.set(fde, table);
  }
  // Where the instructions fail: a query there or past it meets the bad instruction, as a run up
  // to the query's address would; one before it is answered from the rows before.
  if (table.failure !== undefined && va >= table.failure.loc) throw table.failure.error;
  // The last row that starts at or before va (locs[0] is the FDE's start).
  let after = 1;
  let end = table.locs.length;
  while (after < end) {
    const mid = (after + end) >>> 1;
    if ((table.locs[mid] as bigint) <= va) after = mid + 1;
    else end = mid;
  }
  const row = table.rows[after - 1]!;
  // Fresh objects all through: what a caller does with its row never reaches the table.
  const registers = new Map<number, CfiRule>();
  // forEach, not for-of: no iterator step to allocate per rule (a plan asks for thousands of rows).
  row.registers.forEach((rule, reg) => registers.set(reg, { ...rule }));
  return { fdeStart: fde.start, cfa: { ...row.cfa }, registers, returnAddressRegister: fde.cie.returnAddressRegister };
}

/**
 * Every row of an FDE, from one run of the CIE's and then the FDE's instructions, up to the end or
 * to the first instruction that fails (the rows before it are kept, with where and why it
 * failed). Rows copy their register rules, and so does DW_CFA_remember_state: a crafted FDE
 * (thousands of rules, then thousands of advances or remembers) would make that quadratic, so the
 * rules copied are limited to a multiple of the FDE's size; past that the run fails there.
 */
function rowsOf(index: FrameIndex, fde: Fde): FdeRows {
  const locs: bigint[] = [];
  const rows: FdeRows['rows'] = [];
  const budget = { left: ROW_COPY_BUDGET_FACTOR * (fde.entryEnd - fde.instructions) + ROW_COPY_BUDGET_FLOOR };
  let at = fde.start;
  const record = (from: bigint, to: bigint, row: RunRow) => {
    if ((budget.left -= row.registers.size) < 0) throw copyBudgetError(fde);
    // DWARF's locations only grow: a DW_CFA_set_loc back to an earlier one is malformed.
    if (to < from) throw new ElfError('ELF_BAD_EH_FRAME', fde.offset, `DW_CFA_set_loc moves back from 0x${from.toString(16)} to 0x${to.toString(16)}`);
    // The row keeps the running map; the run copies it before it next changes a rule (most rows
    // of x86-64 code differ from the one before in the CFA only).
    const copy = { cfa: row.cfa, registers: row.registers };
    row.shared = true;
    // An advance by 0 stays at the same location: the later row is the one that holds there.
    if (locs.length > 0 && locs[locs.length - 1] === from) rows[rows.length - 1] = copy;
    else {
      locs.push(from);
      rows.push(copy);
    }
    at = to;
  };
  const cie = fde.cie;
  const row: RunRow = { cfa: { register: 7, offset: 8 }, registers: new Map(), shared: false };
  try {
    runInstructions(index, fde, new EntryReader(index.cursor, cie.instructions, cie.end, cie.offset), row, fde.start, undefined, budget);
    const initial: RunRow = { cfa: row.cfa, registers: row.registers, shared: true };
    row.shared = true;
    if (fde.instructions > fde.entryEnd) new EntryReader(index.cursor, fde.instructions, fde.entryEnd, fde.offset).fail('augmentation data runs past the FDE');
    const loc = runInstructions(index, fde, new EntryReader(index.cursor, fde.instructions, fde.entryEnd, fde.offset), row, fde.end - 1n, initial, budget, record);
    record(loc, loc, row);
    return { locs, rows };
  } catch (e) {
    if (!(e instanceof ElfError)) throw e;
    return { locs, rows, failure: { loc: at, error: e } };
  }
}

function copyBudgetError(fde: Fde): ElfError {
  return new ElfError('ELF_BAD_EH_FRAME', fde.offset, `more register rules to copy than an FDE of ${fde.entryEnd - fde.instructions} bytes of instructions can mean (a crafted entry?)`);
}

/**
 * The row a run of instructions changes. `shared`: its map is also held by a recorded row, the
 * initial row or a remembered state, so it is copied before it is changed (copy on write).
 */
interface RunRow {
  cfa: CfiRow['cfa'];
  registers: Map<number, CfiRule>;
  shared: boolean;
}

/** The row's map, to change: its own copy first if another holds it. */
function rules(row: RunRow): Map<number, CfiRule> {
  if (row.shared) {
    row.registers = new Map(row.registers);
    row.shared = false;
  }
  return row.registers;
}

/**
 * Runs DW_CFA instructions from `r` to its end into `row`, stopping before the first advance past
 * `limit`. `initial` is the row after the CIE's instructions, for DW_CFA_restore.
 */
function runInstructions(index: FrameIndex, fde: Fde, r: EntryReader, row: RunRow, limit: bigint, initial: RunRow | undefined, budget: { left: number }, onMove?: (from: bigint, to: bigint, row: RunRow) => void): bigint {
  let loc = fde.start;
  const stack: { cfa: CfiRow['cfa']; registers: Map<number, CfiRule> }[] = [];
  const ca = BigInt(fde.cie.codeAlign);
  const da = fde.cie.dataAlign;
  while (r.at < r.end) {
    const op = r.u8();
    const high = op & 0xc0;
    const low = op & 0x3f;
    let advance: bigint | undefined;
    if (high === 0x40) advance = BigInt(low) * ca;
    else if (high === 0x80) rules(row).set(low, { kind: 'offset', offset: r.ulebNumber() * da });
    else if (high === 0xc0) restore(row, initial, low);
    else switch (op) {
      case 0x00: break;
      case 0x01: { // set_loc, in the FDE's pointer encoding
        const next = r.pointer(fde.cie.fdeEncoding, BigInt(r.at) + index.vaBias, true);
        if (next > limit) return loc;
        onMove?.(loc, next, row);
        loc = next;
        break;
      }
      case 0x02: advance = BigInt(r.u8()) * ca; break;
      case 0x03: advance = BigInt(r.u16()) * ca; break;
      case 0x04: advance = BigInt(r.u32()) * ca; break;
      case 0x05: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'offset', offset: r.ulebNumber() * da }); break; }
      case 0x06: restore(row, initial, r.ulebNumber()); break;
      case 0x07: rules(row).set(r.ulebNumber(), { kind: 'undefined' }); break;
      case 0x08: rules(row).set(r.ulebNumber(), { kind: 'same' }); break;
      case 0x09: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'register', register: r.ulebNumber() }); break; }
      case 0x0a:
        if ((budget.left -= row.registers.size) < 0) throw copyBudgetError(fde);
        stack.push({ cfa: row.cfa, registers: row.registers });
        row.shared = true;
        break;
      case 0x0b: { const saved = stack.pop() ?? r.fail('DW_CFA_restore_state without DW_CFA_remember_state'); row.cfa = saved.cfa; row.registers = saved.registers; row.shared = true; break; }
      case 0x0c: row.cfa = { register: r.ulebNumber(), offset: r.ulebNumber() }; break;
      case 0x0d: row.cfa = { register: r.ulebNumber(), offset: 'offset' in row.cfa ? row.cfa.offset : 0 }; break;
      case 0x0e: row.cfa = { register: 'register' in row.cfa ? row.cfa.register : 7, offset: r.ulebNumber() }; break;
      case 0x0f: row.cfa = { expression: r.block() }; break;
      case 0x10: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'expression', expression: r.block() }); break; }
      case 0x11: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'offset', offset: Number(r.sleb()) * da }); break; }
      case 0x12: row.cfa = { register: r.ulebNumber(), offset: Number(r.sleb()) * da }; break;
      case 0x13: row.cfa = { register: 'register' in row.cfa ? row.cfa.register : 7, offset: Number(r.sleb()) * da }; break;
      case 0x14: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'val-offset', offset: r.ulebNumber() * da }); break; }
      case 0x15: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'val-offset', offset: Number(r.sleb()) * da }); break; }
      case 0x16: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'val-expression', expression: r.block() }); break; }
      case 0x2e: r.uleb(); break; // GNU_args_size
      case 0x2f: { const reg = r.ulebNumber(); rules(row).set(reg, { kind: 'offset', offset: -r.ulebNumber() * da }); break; }
      default: r.fail(`unknown DW_CFA opcode 0x${op.toString(16)} at 0x${(r.at - 1).toString(16)}`);
    }
    if (advance !== undefined) {
      if (loc + advance > limit) return loc;
      onMove?.(loc, loc + advance, row);
      loc += advance;
    }
  }
  return loc;
}

function restore(row: RunRow, initial: RunRow | undefined, reg: number): void {
  const rule = initial?.registers.get(reg);
  if (rule === undefined) rules(row).delete(reg);
  else rules(row).set(reg, rule);
}

// The FDEs of the file's .eh_frame section, by start address (readEhFrame checks every entry's bounds).
function indexEhFrame(elf: ElfFile): FrameIndex {
  const cursor = new Cursor(elf.bytes);
  const s = elf.section('.eh_frame');
  if (s === undefined || s.size === 0 || s.type === SHT_NOBITS) return { fdes: [], cursor, vaBias: 0n, rows: new Map() };
  const fdes = [...sectionFdes(elf, cursor, s)].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  return { fdes, cursor, vaBias: s.va - BigInt(s.offset), rows: new Map() };
}
