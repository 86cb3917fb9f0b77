import { ElfError } from '../errors.js';
import { R_X86_64_RELATIVE, RELA_SIZE, RELR_SIZE, SHT_RELA, SHT_RELR } from '../model/constants.js';
import type { Relocation, Section } from '../model/types.js';
import type { AddressMap } from './address-map.js';
import type { Cursor } from './cursor.js';
import { tableCount } from './read-symbols.js';

/**
 * Reads every SHT_RELA and SHT_RELR section in section order. RELR words are decoded into one
 * R_X86_64_RELATIVE per relocated word, whose addend is the value stored in place.
 */
export function readRelocations(c: Cursor, sections: readonly Section[], map: AddressMap): Relocation[] {
  const out: Relocation[] = [];
  for (const s of sections) {
    if (s.type === SHT_RELA) readRela(c, s, out);
    else if (s.type === SHT_RELR) readRelr(c, s, map, out);
  }
  return out;
}

function readRela(c: Cursor, s: Section, out: Relocation[]): void {
  const n = tableCount(s, RELA_SIZE);
  const view = c.view;
  const target = s.info !== 0 ? s.info : undefined;
  for (let i = 0; i < n; i++) {
    const at = s.offset + i * RELA_SIZE;
    const info = view.getBigUint64(at + 8, true);
    const r: Relocation = {
      section: s.name,
      offset: view.getBigUint64(at, true),
      type: Number(info & 0xffffffffn),
      symbol: Number(info >> 32n),
      addend: view.getBigInt64(at + 16, true),
      kind: 'rela',
      ...(target !== undefined ? { target } : {}),
      ...(s.link !== 0 ? { symbolTable: s.link } : {}),
    };
    out.push(r);
  }
}

// RELR (gABI "Relative relocations"): an even word is an address to relocate and starts a run;
// an odd word is a bitmap whose bit k (k = 1..63) relocates the word at base + (k-1)*8, after
// which base advances by 63 words. Addresses must increase: each relocated word is a distinct
// 8-byte word of file-backed memory. That bounds the output by the file's size only while no two
// segments map the same bytes; a crafted file (60 loads of the whole file) made 37 million
// relocations of 5 MB, so the count is bounded by the file's words as well.
function readRelr(c: Cursor, s: Section, map: AddressMap, out: Relocation[]): void {
  const n = tableCount(s, RELR_SIZE);
  let base = -1n; // next word a bitmap would describe; -1 until an address entry is seen
  let last = -1n;
  let left = Math.floor(c.length / 8);
  const emit = (va: bigint, at: number): void => {
    if (va <= last) throw new ElfError('ELF_BAD_RELOCATION', at, `RELR address 0x${va.toString(16)} does not increase`);
    if (left-- <= 0) throw new ElfError('ELF_BAD_RELOCATION', at, `RELR relocates more words than the file holds (${Math.floor(c.length / 8)}): segments that map the same bytes?`);
    last = va;
    const off = map.vaToOffset(va);
    if (off === undefined || off + 8 > c.length) {
      throw new ElfError('ELF_BAD_RELOCATION', at, `RELR address 0x${va.toString(16)} is not backed by file bytes`);
    }
    out.push({ section: s.name, offset: va, type: R_X86_64_RELATIVE, symbol: 0, addend: c.i64(off), kind: 'relr' });
  };
  const view = c.view;
  for (let i = 0; i < n; i++) {
    const at = s.offset + i * RELR_SIZE;
    c.need(at, 8, 'u64');
    // The word's halves as numbers: a bitmap's 63 bits are tested without a bigint a bit.
    const lo = view.getUint32(at, true);
    if ((lo & 1) === 0) {
      const word = c.u64(at);
      emit(word, at);
      base = word + 8n;
    } else {
      if (base < 0n) throw new ElfError('ELF_BAD_RELOCATION', at, 'RELR bitmap before any address entry');
      const hi = view.getUint32(at + 4, true);
      // Bit k (1..63) relocates the word at base + (k-1)*8, lowest bit first.
      for (let k = 1; k < 64; k++) {
        const set = k < 32 ? (lo >>> k) & 1 : (hi >>> (k - 32)) & 1;
        if (set !== 0) emit(base + BigInt((k - 1) * 8), at);
      }
      base += 63n * 8n;
    }
  }
}
