// Runs a table of cases through our Assembler and through GNU as (one `as` process for the whole
// table) and lists every difference in bytes or relocations.
import { Assembler } from '@libos/encoder';
import { assembleSnippets, hex } from './gnu-as.js';

export interface Case {
  /** GNU as source (Intel syntax unless the table says otherwise). */
  readonly text: string;
  readonly build: (a: Assembler) => void;
}

export interface Comparison {
  readonly count: number;
  readonly mismatches: string[];
  /** Our bytes per case, for further checks (decoding with iced). */
  readonly ours: Uint8Array[];
}

export function compareWithAs(cases: readonly Case[], syntax: 'intel' | 'att' = 'intel'): Comparison {
  const snippets = assembleSnippets(cases.map((c) => c.text), syntax);
  const mismatches: string[] = [];
  const ours: Uint8Array[] = [];
  cases.forEach((c, i) => {
    const expected = snippets[i];
    if (expected === undefined) throw new Error(`no snippet ${i}`);
    let bytes: Uint8Array;
    let relocations: { offset: number; symbol: string; addend: bigint; type: string }[];
    try {
      const a = new Assembler();
      c.build(a);
      const r = a.encode({ va: BigInt(expected.offset) });
      bytes = r.bytes;
      relocations = r.relocations.map((x) => ({ offset: x.offset, symbol: x.symbol, addend: x.addend, type: x.type }));
    } catch (e) {
      mismatches.push(`${c.text.replace(/\n/g, '; ')}: as ${hex(expected.bytes)}, ours threw ${(e as Error).message}`);
      ours.push(new Uint8Array(0));
      return;
    }
    ours.push(bytes);
    if (hex(bytes) !== hex(expected.bytes)) {
      mismatches.push(`${c.text.replace(/\n/g, '; ')}: as ${hex(expected.bytes)}, ours ${hex(bytes)}`);
      return;
    }
    // GNU as records branches to global symbols as PLT32; we record PC32 with branch=true.
    const norm = (x: { offset: number; symbol: string; addend: bigint; type: string }) =>
      `${x.offset}:${x.symbol}:${x.addend}:${x.type === 'PLT32' ? 'PC32' : x.type}`;
    const e = expected.relocations.map(norm).join(' ');
    const o = relocations.map(norm).join(' ');
    if (e !== o) mismatches.push(`${c.text.replace(/\n/g, '; ')}: as relocations [${e}], ours [${o}]`);
  });
  return { count: cases.length, mismatches, ours };
}
