// Assembles many snippets with GNU as in ONE process and hands back each snippet's bytes and
// relocations, so every table and the random differential test cost one `as` run each.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AsRelocation {
  offset: number;
  symbol: string;
  addend: bigint;
  type: 'PC32' | 'ABS64' | 'PLT32' | 'OTHER';
}

export interface AsSnippet {
  /** Offset of the snippet in .text (its va when the section starts at 0). */
  offset: number;
  bytes: Uint8Array;
  relocations: AsRelocation[];
}

const RELOC_TYPES: Record<number, AsRelocation['type']> = { 1: 'ABS64', 2: 'PC32', 4: 'PLT32' };

/**
 * Assembles `snippets` (Intel syntax unless `syntax` is 'att'), each preceded by a marker label,
 * and splits .text at the markers. Relocation offsets are relative to the snippet.
 */
export function assembleSnippets(snippets: readonly string[], syntax: 'intel' | 'att' = 'intel'): AsSnippet[] {
  const dir = mkdtempSync(join(tmpdir(), 'libos-enc-'));
  try {
    const lines: string[] = [syntax === 'intel' ? '.intel_syntax noprefix' : '.att_syntax prefix', '.text'];
    snippets.forEach((s, i) => { lines.push(`__snippet_${i}:`, s); });
    lines.push(`__snippet_${snippets.length}:`, '');
    const src = join(dir, 'in.s');
    const obj = join(dir, 'out.o');
    writeFileSync(src, lines.join('\n'));
    execFileSync('as', ['--64', '-o', obj, src], { stdio: ['ignore', 'ignore', 'pipe'] });
    return split(readElfObject(readFileSync(obj)), snippets.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the tests need from an object file: .text, its symbols and its relocations. */
export interface ObjectFile {
  text: Uint8Array;
  markers: Map<number, number>;
  /** .text symbols by name: value and size. */
  symbols: Map<string, { value: number; size: number }>;
  relocations: AsRelocation[];
}

/** Assembles a whole source file (as written, directives and macros included). */
export function assembleSource(source: string): ObjectFile {
  const dir = mkdtempSync(join(tmpdir(), 'libos-enc-'));
  try {
    const src = join(dir, 'in.s');
    const obj = join(dir, 'out.o');
    writeFileSync(src, source);
    execFileSync('as', ['--64', '-o', obj, src], { stdio: ['ignore', 'ignore', 'pipe'] });
    return readElfObject(readFileSync(obj));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function split(o: ObjectFile, n: number): AsSnippet[] {
  const out: AsSnippet[] = [];
  for (let i = 0; i < n; i++) {
    const start = o.markers.get(i);
    const end = o.markers.get(i + 1);
    if (start === undefined || end === undefined) throw new Error(`marker ${i} missing from the object`);
    out.push({
      offset: start,
      bytes: o.text.slice(start, end),
      relocations: o.relocations.filter((r) => r.offset >= start && r.offset < end).map((r) => ({ ...r, offset: r.offset - start })),
    });
  }
  return out;
}

/** A minimal ELF64 relocatable reader: .text, marker symbols, .rela.text. */
function readElfObject(buf: Buffer): ObjectFile {
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const sh = (i: number) => {
    const b = shoff + i * shentsize;
    return {
      name: buf.readUInt32LE(b), type: buf.readUInt32LE(b + 4), offset: Number(buf.readBigUInt64LE(b + 0x18)),
      size: Number(buf.readBigUInt64LE(b + 0x20)), link: buf.readUInt32LE(b + 0x28), entsize: Number(buf.readBigUInt64LE(b + 0x38)),
    };
  };
  const shstr = sh(shstrndx);
  const cstr = (off: number) => buf.toString('latin1', off, buf.indexOf(0, off));
  const sections = Array.from({ length: shnum }, (_, i) => ({ index: i, ...sh(i), nameStr: cstr(shstr.offset + sh(i).name) }));
  const text = sections.find((s) => s.nameStr === '.text');
  const symtab = sections.find((s) => s.type === 2);
  if (text === undefined || symtab === undefined) throw new Error('no .text or .symtab');
  const strtab = sections[symtab.link];
  if (strtab === undefined) throw new Error('no .strtab');
  const symbols: { name: string; value: number; shndx: number; size: number }[] = [];
  for (let off = symtab.offset; off < symtab.offset + symtab.size; off += 24) {
    symbols.push({
      name: cstr(strtab.offset + buf.readUInt32LE(off)), shndx: buf.readUInt16LE(off + 6),
      value: Number(buf.readBigUInt64LE(off + 8)), size: Number(buf.readBigUInt64LE(off + 16)),
    });
  }
  const textSymbols = new Map<string, { value: number; size: number }>();
  for (const s of symbols) if (s.shndx === text.index && s.name !== '') textSymbols.set(s.name, { value: s.value, size: s.size });
  const markers = new Map<number, number>();
  for (const s of symbols) {
    const m = /^__snippet_(\d+)$/.exec(s.name);
    if (m && s.shndx === text.index) markers.set(Number(m[1]), s.value);
  }
  const relocations: AsRelocation[] = [];
  const rela = sections.find((s) => s.nameStr === '.rela.text');
  if (rela !== undefined) {
    for (let off = rela.offset; off < rela.offset + rela.size; off += 24) {
      const info = buf.readBigUInt64LE(off + 8);
      const sym = symbols[Number(info >> 32n)];
      relocations.push({
        offset: Number(buf.readBigUInt64LE(off)), symbol: sym?.name ?? '', addend: buf.readBigInt64LE(off + 16),
        type: RELOC_TYPES[Number(info & 0xffffffffn)] ?? 'OTHER',
      });
    }
  }
  return { text: new Uint8Array(buf.buffer, buf.byteOffset + text.offset, text.size).slice(), markers, symbols: textSymbols, relocations };
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}
