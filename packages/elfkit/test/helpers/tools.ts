// Parsers for the text of `readelf -W` and `objdump -d`, the independent reference the reader's
// tables are compared with.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Runs a binutils tool and returns its stdout (large outputs allowed). */
export async function tool(cmd: string, args: string[], options: { allowFailure?: boolean } = {}): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { maxBuffer: 1 << 30, env: { ...process.env, LC_ALL: 'C' } });
    return stdout;
  } catch (e) {
    // For tools that print what they could before failing on something the test does not need.
    const stdout = (e as { stdout?: string }).stdout;
    if (options.allowFailure === true && typeof stdout === 'string' && stdout !== '') return stdout;
    throw e;
  }
}

export interface RefSection {
  index: number; name: string; type: string; va: bigint; offset: number; size: number; entsize: number;
  flags: string; link: number; info: number; align: number;
}

// `  [ 1] .interp           PROGBITS        0000000000000318 000318 00001c 00   A  0   0  1`
const SECTION_RE = /^\s*\[\s*(\d+)\]\s(.*?)\s+(\S+(?: SECTION INDICES)?)\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;

/** Parses `readelf -W -S`. */
export function parseSections(text: string): RefSection[] {
  const out: RefSection[] = [];
  for (const line of text.split('\n')) {
    const m = SECTION_RE.exec(line);
    if (m === null) continue;
    out.push({
      index: Number(m[1]), name: m[2]!.trim(), type: m[3]!, va: BigInt(`0x${m[4]}`), offset: parseInt(m[5]!, 16),
      size: parseInt(m[6]!, 16), entsize: parseInt(m[7]!, 16), flags: m[8]!, link: Number(m[9]), info: Number(m[10]),
      align: Number(m[11]),
    });
  }
  return out;
}

/** readelf's section type names. */
export const SECTION_TYPES: Record<string, number> = {
  NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, HASH: 5, DYNAMIC: 6, NOTE: 7, NOBITS: 8, REL: 9,
  DYNSYM: 11, INIT_ARRAY: 14, FINI_ARRAY: 15, PREINIT_ARRAY: 16, GROUP: 17, 'SYMTAB SECTION INDICES': 18,
  RELR: 19, GNU_HASH: 0x6ffffff6, VERDEF: 0x6ffffffd, VERNEED: 0x6ffffffe, VERSYM: 0x6fffffff,
  X86_64_UNWIND: 0x70000001, GNU_ATTRIBUTES: 0x6ffffff5, LLVM_ADDRSIG: 0x6fff4c03,
};

/** readelf's section flag letters, by bit. */
export const SECTION_FLAGS: Record<string, bigint> = {
  W: 0x1n, A: 0x2n, X: 0x4n, M: 0x10n, S: 0x20n, I: 0x40n, L: 0x80n, O: 0x100n, G: 0x200n, T: 0x400n,
  C: 0x800n, R: 0x200000n, l: 0x10000000n, E: 0x80000000n,
};

export function flagLetters(letters: string): bigint {
  let f = 0n;
  for (const ch of letters) {
    const bit = SECTION_FLAGS[ch];
    if (bit === undefined) throw new Error(`unknown readelf section flag ${ch}`);
    f |= bit;
  }
  return f;
}

export interface RefSegment {
  type: string; offset: number; va: bigint; pa: bigint; filesz: number; memsz: number; flags: number; align: number;
}

const SEGMENT_RE = /^\s+(\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+([RWE ]+?)\s+0x([0-9a-f]+)\s*$/;

/** Parses `readelf -W -l`. */
export function parseSegments(text: string): RefSegment[] {
  const out: RefSegment[] = [];
  for (const line of text.split('\n')) {
    const m = SEGMENT_RE.exec(line);
    if (m === null) continue;
    const f = m[7]!;
    out.push({
      type: m[1]!, offset: parseInt(m[2]!, 16), va: BigInt(`0x${m[3]}`), pa: BigInt(`0x${m[4]}`), filesz: parseInt(m[5]!, 16),
      memsz: parseInt(m[6]!, 16), flags: (f.includes('R') ? 4 : 0) | (f.includes('W') ? 2 : 0) | (f.includes('E') ? 1 : 0),
      align: parseInt(m[8]!, 16),
    });
  }
  return out;
}

export const SEGMENT_TYPES: Record<string, number> = {
  NULL: 0, LOAD: 1, DYNAMIC: 2, INTERP: 3, NOTE: 4, SHLIB: 5, PHDR: 6, TLS: 7, GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551, GNU_RELRO: 0x6474e552, GNU_PROPERTY: 0x6474e553,
};

export interface RefSymbolTable { name: string; count: number; lines: string[] }

/** Splits `readelf -W -s` into its tables, keeping each symbol's raw line (parse the ones you need). */
export function splitSymbolTables(text: string): RefSymbolTable[] {
  const out: RefSymbolTable[] = [];
  let current: RefSymbolTable | undefined;
  for (const line of text.split('\n')) {
    const h = /^Symbol table '(.+)' contains (\d+) entr/.exec(line);
    if (h !== null) {
      current = { name: h[1]!, count: Number(h[2]), lines: [] };
      out.push(current);
    } else if (current !== undefined && /^\s*\d+:/.test(line)) {
      current.lines.push(line);
    }
  }
  return out;
}

export interface RefSymbol {
  index: number; value: bigint; size: number; type: string; bind: string; vis: string; ndx: string; name: string;
}

const SYMBOL_RE = /^\s*(\d+):\s+([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s?(.*)$/;

export function parseSymbolLine(line: string): RefSymbol {
  const m = SYMBOL_RE.exec(line);
  if (m === null) throw new Error(`unparsed readelf symbol line: ${line}`);
  return {
    index: Number(m[1]), value: BigInt(`0x${m[2]}`), size: Number(m[3]), type: m[4]!, bind: m[5]!, vis: m[6]!,
    ndx: m[7]!, name: m[8]!,
  };
}

export const SYMBOL_TYPES: Record<string, number> = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4, COMMON: 5, TLS: 6, IFUNC: 10 };
export const SYMBOL_BINDS: Record<string, number> = { LOCAL: 0, GLOBAL: 1, WEAK: 2, UNIQUE: 10 };
export const SYMBOL_VIS: Record<string, number> = { DEFAULT: 0, INTERNAL: 1, HIDDEN: 2, PROTECTED: 3 };

export function symbolNdx(ndx: string): number {
  if (ndx === 'UND') return 0;
  if (ndx === 'ABS') return 0xfff1;
  if (ndx === 'COM') return 0xfff2;
  return Number(ndx);
}

export interface RefRelocSection {
  name: string; offset: number; entries: number;
  rela: { offset: bigint; info: bigint; type: string; symbolName: string; addend: bigint }[];
  relr: bigint[];
}

/** Parses `readelf -W -r`. */
export function parseRelocations(text: string): RefRelocSection[] {
  const out: RefRelocSection[] = [];
  let current: RefRelocSection | undefined;
  for (const line of text.split('\n')) {
    const h = /^Relocation section '(.+)' at offset 0x([0-9a-f]+) contains (\d+) entr/.exec(line);
    if (h !== null) {
      current = { name: h[1]!, offset: parseInt(h[2]!, 16), entries: Number(h[3]), rela: [], relr: [] };
      out.push(current);
      continue;
    }
    if (current === undefined) continue;
    const r = /^([0-9a-f]{16})\s+([0-9a-f]{16})\s+(\S+)\s*(.*)$/.exec(line);
    if (r !== null) {
      const rest = r[4]!;
      let symbolName = '';
      let addend = 0n;
      const withSym = /^([0-9a-f]{16})\s+(.*) ([+-]) ([0-9a-f]+)$/.exec(rest);
      if (withSym !== null) {
        symbolName = withSym[2]!;
        addend = BigInt(`0x${withSym[4]}`) * (withSym[3] === '-' ? -1n : 1n);
      } else if (rest !== '') {
        const neg = rest.startsWith('-');
        addend = BigInt(`0x${neg ? rest.slice(1) : rest}`) * (neg ? -1n : 1n);
      }
      current.rela.push({ offset: BigInt(`0x${r[1]}`), info: BigInt(`0x${r[2]}`), type: r[3]!, symbolName, addend });
      continue;
    }
    const o = /^([0-9a-f]{16})\s*$/.exec(line);
    if (o !== null) current.relr.push(BigInt(`0x${o[1]}`));
  }
  return out;
}

/** Addresses of every `syscall` in `objdump -d`, with the section they were found in and whether 10 NOPs follow. */
export function parseSyscalls(text: string): { section: string; va: bigint; padded: boolean }[] {
  const lines = text.split('\n');
  const out: { section: string; va: bigint; padded: boolean }[] = [];
  let section = '';
  const insn = /^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*\t(.*)$/;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const s = /^Disassembly of section (.+):$/.exec(line);
    if (s !== null) {
      section = s[1]!;
      continue;
    }
    const m = insn.exec(line);
    if (m === null || m[2]!.trim() !== 'syscall') continue;
    let nops = 0;
    for (let k = i + 1; k < lines.length && nops < 10; k++) {
      const n = insn.exec(lines[k]!);
      if (n === null || n[2]!.trim() !== 'nop') break;
      nops++;
    }
    out.push({ section, va: BigInt(`0x${m[1]}`), padded: nops === 10 });
  }
  return out;
}
