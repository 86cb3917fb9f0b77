/**
 * Links a handler object at the caller's addresses: copies its sections into a text part and a
 * data part, resolves every relocation PC-relatively (with range checks, the parts may be far
 * apart) and reports the symbols and whether the code touches vector state.
 */
import { SHN_ABS, SHN_COMMON, STT_FUNC, STT_OBJECT, type ElfSymbol } from '@libos/elfkit';
import { findVectorUse } from './detect-vector-use.js';
import { LinkError } from './link-errors.js';
import type { HandlerLayout, HandlerMeasure, LinkedHandler, LinkedSymbol, LinkOptions, VectorUse } from './link-types.js';
import { planHandlerObject, type HandlerObjectPlan, type PlannedRelocation } from './plan-handler-object.js';
import { applyGotRelaxation } from './relax-got.js';
import { relocationTypeName } from './relocation-kinds.js';

/**
 * The sizes and alignments of a handler's text and data parts, so the caller can place them
 * before linking. Checks the whole object (relocations, symbols, the entry) and throws the same
 * {@link LinkError} that {@link linkHandlerObject} would; pass the same `opts`.
 *
 * @example
 * const m = measureHandlerObject(obj, { absoluteOk: elf.kind === 'exec' });
 * const [text, data] = planLayout(elf, [
 *   { name: 'handler.text', size: m.textSize, flags: 'rx' },
 *   { name: 'handler.data', size: m.dataMemSize, flags: 'rw' },
 * ]);
 */
export function measureHandlerObject(obj: Uint8Array, opts: LinkOptions = {}): HandlerMeasure {
  return planHandlerObject(obj, opts).measure;
}

/**
 * Links the handler object `obj` (ET_REL, compiled as docs/handlers.md says) with its text part at
 * `layout.textVa` and its data part at `layout.dataVa`. Throws {@link LinkError}.
 */
export function linkHandlerObject(obj: Uint8Array, layout: HandlerLayout, opts: LinkOptions = {}): LinkedHandler {
  const plan = planHandlerObject(obj, opts);
  checkAlignment(plan, layout);
  const text = new Uint8Array(plan.measure.textSize);
  const data = new Uint8Array(plan.measure.dataFileSize);
  for (const p of plan.placed.values()) {
    if (p.nobits) continue; // zero-filled: the fresh buffers (or the segment's memsz) already are
    const s = p.section;
    const into = p.part === 'text' ? text : data;
    into.set(plan.elf.bytes.subarray(s.offset, s.offset + s.size), p.offset);
  }
  for (const r of plan.relocations) applyRelocation(plan, layout, r, r.target.part === 'text' ? text : data);

  const symbols = linkedSymbols(plan, layout);
  let vectorUse: VectorUse | undefined;
  for (const p of plan.placed.values()) {
    if (!p.exec || vectorUse !== undefined) continue;
    vectorUse = findVectorUse(text.subarray(p.offset, p.offset + p.section.size), layout.textVa + BigInt(p.offset));
  }
  return {
    text,
    data,
    dataMemSize: plan.measure.dataMemSize,
    symbols,
    entryVa: symbolVa(plan, layout, plan.entry),
    usesVectorRegisters: vectorUse !== undefined,
    ...(vectorUse !== undefined ? { vectorUse } : {}),
  };
}

function checkAlignment(plan: HandlerObjectPlan, layout: HandlerLayout): void {
  const { textAlign, dataAlign } = plan.measure;
  if (layout.textVa % BigInt(textAlign) !== 0n) {
    throw new LinkError('LINK_BAD_LAYOUT', { file: plan.file }, `textVa 0x${layout.textVa.toString(16)} is not aligned to ${textAlign}`);
  }
  if (layout.dataVa % BigInt(dataAlign) !== 0n) {
    throw new LinkError('LINK_BAD_LAYOUT', { file: plan.file }, `dataVa 0x${layout.dataVa.toString(16)} is not aligned to ${dataAlign}`);
  }
}

/** The linked address of a defined symbol (checked by the plan). */
function symbolVa(plan: HandlerObjectPlan, layout: HandlerLayout, sym: ElfSymbol): bigint {
  if (sym.section === SHN_ABS) return sym.value;
  if (sym.section === SHN_COMMON) return layout.dataVa + BigInt(plan.commons.get(sym.index) ?? 0);
  const p = plan.placed.get(sym.section);
  if (p === undefined) throw new Error(`internal: symbol ${sym.name} in an unplaced section`);
  return (p.part === 'text' ? layout.textVa : layout.dataVa) + BigInt(p.offset) + sym.value;
}

const INT32_MIN = -(1n << 31n);
const INT32_MAX = (1n << 31n) - 1n;

function applyRelocation(plan: HandlerObjectPlan, layout: HandlerLayout, r: PlannedRelocation, part: Uint8Array): void {
  const at = r.target.offset + r.offset; // in the part
  const partVa = r.target.part === 'text' ? layout.textVa : layout.dataVa;
  const s = symbolVa(plan, layout, r.symbol);
  const view = new DataView(part.buffer, part.byteOffset, part.byteLength);
  if (r.kind === 'abs64') {
    view.setBigUint64(at, BigInt.asUintN(64, s + r.addend), true);
    return;
  }
  let field = at;
  if (r.relaxation !== undefined) field += applyGotRelaxation(part, at, r.relaxation);
  const place = partVa + BigInt(field);
  // A relaxed jmp's field sits one byte earlier and its instruction ends one byte earlier too, so
  // S + A - P with the field's new place still lands on S.
  const value = s + r.addend - place;
  if (value < INT32_MIN || value > INT32_MAX) {
    throw new LinkError('LINK_OUT_OF_RANGE', { file: plan.file, section: r.target.section.name, offset: r.offset, symbol: r.symbolName },
      `${relocationTypeName(r.type)} to ${r.symbolName}${formatAddend(r.addend)} at 0x${s.toString(16)} does not reach from 0x${place.toString(16)} ` +
      `(distance ${value}, beyond ±2 GiB): place the handler's text and data closer together`);
  }
  view.setInt32(field, Number(value), true);
}

function linkedSymbols(plan: HandlerObjectPlan, layout: HandlerLayout): LinkedSymbol[] {
  const out: LinkedSymbol[] = [];
  for (const sym of plan.elf.symbols) {
    if (sym.name === '' || (sym.type !== STT_FUNC && sym.type !== STT_OBJECT)) continue;
    if (sym.section !== SHN_COMMON && !plan.placed.has(sym.section)) continue;
    out.push({ name: sym.name, va: symbolVa(plan, layout, sym), size: sym.size, type: sym.type === STT_FUNC ? 'func' : 'object' });
  }
  return out;
}

/** `+0x1c`, `-0x4` or nothing, the way readelf shows an addend. */
function formatAddend(addend: bigint): string {
  if (addend === 0n) return '';
  return addend < 0n ? `-0x${(-addend).toString(16)}` : `+0x${addend.toString(16)}`;
}
