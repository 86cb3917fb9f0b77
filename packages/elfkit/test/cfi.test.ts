// cfiRowAt against `readelf --debug-dump=frames-interp`: the CFA rule and where rbp and the return
// address (rip, DWARF 16) are, at the start, middle and last byte of every row of every FDE, for
// programs gcc builds here, the shared fixtures and the system's libc.so.6; then malformed .eh_frame
// contents, which must give an ElfError with its code and the entry's file offset.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cfiRowAt, readElf, type CfiRow, type CfiRule, type ElfFile } from '../src/index.js';
import { Cursor } from '../src/read/cursor.js';
import { readEhFrame, type Fde } from '../src/read/read-eh-frame.js';
import { buildFixtures } from '../../../fixtures/build.js';
import { expectElfError } from './helpers/expect-error.js';
import { tool } from './helpers/tools.js';

const run = promisify(execFile);
const test = suite('cfi');
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

// Code whose unwind rows take every shape gcc emits on x86-64: frame pointer (CFA rbp+16),
// pushes and pops around early returns (remember_state/restore_state), alloca, and a stack
// realigned for an over-aligned local (CFA and rbp given as DWARF expressions).
const SOURCE = `
#include <alloca.h>
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }
__attribute__((noinline)) int early(int n, char **v) {
  if (n > 3) return n;
  char buf[64];
  snprintf(buf, sizeof buf, "%d %s", n, v[0]);
  sink(buf);
  if (n == 2) return 7;
  return (int)strlen(buf);
}
__attribute__((noinline)) long with_alloca(int n) {
  char *p = alloca(n + 16);
  memset(p, n, n + 16);
  sink(p);
  return p[n / 2] + early(n, &p);
}
__attribute__((noinline)) double realigned(int n) {
  double a[8] __attribute__((aligned(64)));
  for (int i = 0; i < 8; i++) a[i] = n * i;
  sink(a);
  return a[n & 7];
}
__attribute__((noinline)) long saves(long a, long b, long c, long d, long e, long f) {
  long x = a * b, y = c * d, z = e * f, w = a + f;
  sink(&x);
  return x + y + z + w + with_alloca((int)(a & 15));
}
int main(int argc, char **argv) {
  printf("%ld %f %d\\n", saves(argc, 2, 3, 4, 5, 6), realigned(argc), early(argc, argv));
  return 0;
}
`;

/** Builds SOURCE at -O0 (frame pointers) and -O2, as a PIE and a static program. */
async function buildOwn(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'libos-cfi-'));
  const src = join(dir, 'cfi.c');
  writeFileSync(src, SOURCE);
  const builds: [string, string[]][] = [
    ['o0', ['-O0', '-fno-omit-frame-pointer']],
    ['o2', ['-O2']],
    ['o2-static', ['-O2', '-static']],
  ];
  await Promise.all(builds.map(([out, args]) => run('gcc', [...args, src, '-o', join(dir, out)])));
  return builds.map(([out]) => join(dir, out));
}

// readelf's names for DWARF registers 0-16 on x86-64 (16, the return address column, is `ra`).
const REG_NAMES = ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];
const regName = (n: number): string => REG_NAMES[n] ?? `r${n}`;

interface RefRow { loc: bigint; cfa: string; rbp: string; ra: string }
interface RefFde { offset: number; cie: number; start: bigint; end: bigint; rows: RefRow[] }

/** Parses `readelf --debug-dump=frames-interp`: each FDE with its rows (a CIE's row for an FDE without a table of its own). */
function parseFrames(text: string): RefFde[] {
  const cieRows = new Map<number, RefRow>();
  const fdes: RefFde[] = [];
  const lines = text.split('\n');
  let inEhFrame = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('Contents of ')) inEhFrame = line.startsWith('Contents of the .eh_frame section');
    if (!inEhFrame) continue;
    const cie = /^([0-9a-f]{8}) [0-9a-f]+ [0-9a-f]{8} CIE /.exec(line);
    const fde = /^([0-9a-f]{8}) [0-9a-f]+ [0-9a-f]{8} FDE cie=([0-9a-f]{8}) pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(line);
    if (cie === null && fde === null) continue;
    const rows: RefRow[] = [];
    const header = lines[i + 1] ?? '';
    if (/^\s+LOC\s+CFA/.test(header)) {
      const columns = header.trim().split(/\s+/);
      for (i += 2; i < lines.length && /^[0-9a-f]{16} /.test(lines[i]!); i++) {
        // A register rule is printed `r9 (r9)`: one cell with a space in it.
        const cells = lines[i]!.trim().match(/r\d+ \([^)]*\)|\S+/g) ?? [];
        const cell = (name: string): string => { const k = columns.indexOf(name); return k < 0 ? 'u' : cells[k]!; };
        rows.push({ loc: BigInt(`0x${cells[0]}`), cfa: cells[1]!, rbp: cell('rbp'), ra: cell('ra') });
      }
      i--;
    }
    if (cie !== null) {
      cieRows.set(parseInt(cie[1]!, 16), rows[0]!);
      continue;
    }
    const start = BigInt(`0x${fde![3]}`);
    const end = BigInt(`0x${fde![4]}`);
    const cieAt = parseInt(fde![2]!, 16);
    if (rows.length === 0) {
      const initial = cieRows.get(cieAt);
      assert.ok(initial !== undefined, `readelf: FDE at 0x${fde![1]} without a row, and CIE 0x${fde![2]} has none either`);
      rows.push({ ...initial!, loc: start });
    }
    if (start < end) fdes.push({ offset: parseInt(fde![1]!, 16), cie: cieAt, start, end, rows });
  }
  return fdes;
}

function cfaText(row: CfiRow): string {
  const cfa = row.cfa;
  return 'expression' in cfa ? 'exp' : `${regName(cfa.register)}${cfa.offset >= 0 ? '+' : ''}${cfa.offset}`;
}

function ruleText(rule: CfiRule | undefined): string {
  if (rule === undefined) return 'u';
  switch (rule.kind) {
    case 'undefined': return 'u';
    case 'same': return 's';
    case 'offset': return `c${rule.offset >= 0 ? '+' : ''}${rule.offset}`;
    case 'val-offset': return `v${rule.offset >= 0 ? '+' : ''}${rule.offset}`;
    case 'register': return `r${rule.register} (${regName(rule.register)})`;
    case 'expression': return 'exp';
    case 'val-expression': return 'vexp';
  }
}

/** Compares cfiRowAt with readelf at the first, middle and last byte of every row; returns how many addresses. */
async function compareWithReadelf(path: string): Promise<number> {
  const elf = readElf(readFileSync(path));
  // no-follow-links: readelf would also read a separate debug file's (NOBITS) .eh_frame, and fail.
  const ref = parseFrames(await tool('readelf', ['--debug-dump=no-follow-links', '--debug-dump=frames-interp', path]));
  assert.ok(ref.length > 0, `${path}: readelf lists FDEs`);
  let compared = 0;
  for (const fde of ref) {
    fde.rows.forEach((r, k) => {
      const next = fde.rows[k + 1]?.loc ?? fde.end;
      for (const va of new Set([r.loc, (r.loc + next) / 2n, next - 1n])) {
        if (va < r.loc || va >= next) continue;
        const where = `${path} 0x${va.toString(16)} (FDE 0x${fde.offset.toString(16)}, row 0x${r.loc.toString(16)})`;
        const mine = cfiRowAt(elf, va);
        assert.ok(mine !== undefined, `${where}: a row`);
        assert.is(mine!.fdeStart, fde.start, `${where}: FDE start`);
        assert.is(mine!.returnAddressRegister, 16, `${where}: return address column`);
        assert.is(cfaText(mine!), r.cfa, `${where}: CFA`);
        assert.is(ruleText(mine!.registers.get(6)), r.rbp, `${where}: rbp`);
        assert.is(ruleText(mine!.registers.get(16)), r.ra, `${where}: rip`);
        compared++;
      }
    });
  }
  // Just past each FDE, where no other FDE starts: no row.
  const sorted = [...ref].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const covered = (va: bigint): boolean => sorted.some((f) => f.start <= va && va < f.end);
  for (const f of sorted.slice(0, 200)) {
    if (!covered(f.end)) assert.is(cfiRowAt(elf, f.end), undefined, `${path} 0x${f.end.toString(16)}: past FDE 0x${f.offset.toString(16)}, no row`);
  }
  return compared;
}

test('matches readelf --debug-dump=frames-interp: programs built here at -O0 and -O2, PIE and static', async () => {
  for (const path of await buildOwn()) {
    const n = await compareWithReadelf(path);
    assert.ok(n > 40, `${path}: compared ${n} addresses`);
  }
});

test('matches readelf --debug-dump=frames-interp: shared fixtures (non-PIE, static-PIE, shared library)', async () => {
  const f = await buildFixtures();
  for (const path of [f.nonPie, f.staticPie, f.shared]) {
    const n = await compareWithReadelf(path);
    assert.ok(n > 20, `${path}: compared ${n} addresses`);
  }
});

test(`matches readelf --debug-dump=frames-interp: ${LIBC}`, async () => {
  const n = await compareWithReadelf(LIBC);
  assert.ok(n > 10_000, `compared ${n} addresses`);
});

test('the row shapes of the programs built here are all seen: rbp+16, an expression CFA, rbp saved and not', async () => {
  const [o0, o2] = await buildOwn();
  const shapes = new Set<string>();
  for (const path of [o0!, o2!]) {
    const elf = readElf(readFileSync(path));
    for (const fde of fdesOf(elf)) {
      for (let va = fde.start; va < fde.end; va++) {
        const row = cfiRowAt(elf, va)!;
        shapes.add(`cfa ${cfaText(row)}`);
        shapes.add(`rbp ${ruleText(row.registers.get(6))}`);
      }
    }
  }
  for (const s of ['cfa rbp+16', 'cfa exp', 'rbp c-16', 'rbp u']) assert.ok(shapes.has(s), `${s} among ${[...shapes].join(', ')}`);
});

test('no .eh_frame, or an address no FDE covers: undefined', async () => {
  const f = await buildFixtures();
  const elf = readElf(readFileSync(f.nonPie));
  assert.is(cfiRowAt(elf, 0n), undefined);
  assert.is(cfiRowAt(elf, 0xffff_ffff_ffff_fff0n), undefined);
  const stripped = new Uint8Array(readFileSync(f.nonPie));
  const noEh = readElf(renameSection(stripped, elf, '.eh_frame', '.eh_xxxxx'));
  assert.is(cfiRowAt(noEh, elf.header.entry), undefined);
});

// ---- malformed input ----

function fdesOf(elf: ElfFile): Fde[] {
  const s = elf.section('.eh_frame')!;
  return readEhFrame(new Cursor(elf.bytes), s.offset, s.size, s.va);
}

/** Overwrites a section name in .shstrtab with another of the same length. */
function renameSection(bytes: Uint8Array, elf: ElfFile, from: string, to: string): Uint8Array {
  const table = elf.sections[elf.header.shstrndx]!;
  const at = Buffer.from(bytes.buffer, bytes.byteOffset + table.offset, table.size).indexOf(`${from}\0`);
  assert.ok(at >= 0 && from.length === to.length);
  bytes.set(Buffer.from(to), table.offset + at);
  return bytes;
}

/** ULEB128 bytes, for .cfi_escape. */
function uleb(n: number): string {
  const out: string[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(`0x${(n !== 0 ? b | 0x80 : b).toString(16)}`);
  } while (n !== 0);
  return out.join(', ');
}

/** A fresh copy of the non-PIE fixture and its first FDE with at least `minInsns` instruction bytes. */
async function corruptible(minInsns = 4): Promise<{ bytes: Uint8Array; fde: Fde }> {
  const bytes = new Uint8Array(readFileSync((await buildFixtures()).nonPie));
  const fde = fdesOf(readElf(bytes)).find((f) => f.entryEnd - f.instructions >= minInsns && bytes[f.instructions] !== 0);
  assert.ok(fde !== undefined, 'an FDE with instructions');
  return { bytes, fde: fde! };
}

test('malformed: an unknown DW_CFA opcode is ELF_BAD_EH_FRAME at its FDE', async () => {
  const { bytes, fde } = await corruptible();
  bytes[fde.instructions] = 0x3f;
  const err = expectElfError(() => cfiRowAt(readElf(bytes), fde.end - 1n), 'ELF_BAD_EH_FRAME', fde.offset);
  assert.match(err.message, /unknown DW_CFA opcode 0x3f/);
});

test('malformed: DW_CFA_restore_state without remember_state is ELF_BAD_EH_FRAME at its FDE', async () => {
  const { bytes, fde } = await corruptible();
  bytes[fde.instructions] = 0x0b;
  expectElfError(() => cfiRowAt(readElf(bytes), fde.end - 1n), 'ELF_BAD_EH_FRAME', fde.offset);
});

test('malformed: a DWARF expression block longer than its FDE is ELF_BAD_EH_FRAME at the FDE', async () => {
  const { bytes, fde } = await corruptible(3);
  bytes.set([0x0f, 0x7f], fde.instructions); // DW_CFA_def_cfa_expression, 127 bytes
  const err = expectElfError(() => cfiRowAt(readElf(bytes), fde.end - 1n), 'ELF_BAD_EH_FRAME', fde.offset);
  assert.match(err.message, /runs past the entry's end/);
});

test('malformed: an instruction operand cut off by the FDE\'s end is ELF_BAD_EH_FRAME at the FDE', async () => {
  const { bytes, fde } = await corruptible(1);
  bytes[fde.entryEnd - 1] = 0x04; // DW_CFA_advance_loc4 as the last byte
  expectElfError(() => cfiRowAt(readElf(bytes), fde.end - 1n), 'ELF_BAD_EH_FRAME', fde.offset);
});

test('malformed: rows before the bad instruction are still answered, the same as in the intact file, at every query', async () => {
  const { bytes, fde } = await corruptible(4);
  const intact = cfiRowAt(readElf(new Uint8Array(bytes)), fde.start)!;
  bytes[fde.entryEnd - 1] = 0x04; // DW_CFA_advance_loc4 as the last byte: only the end is unreadable
  const elf = readElf(bytes);
  // Twice: the first query builds the rows up to the bad instruction, the second reads them.
  for (let i = 0; i < 2; i++) {
    const row = cfiRowAt(elf, fde.start)!;
    assert.equal(cfaText(row), cfaText(intact));
    assert.equal([...row.registers].map(([r, rule]) => `${r}:${ruleText(rule)}`), [...intact.registers].map(([r, rule]) => `${r}:${ruleText(rule)}`));
    expectElfError(() => cfiRowAt(elf, fde.end - 1n), 'ELF_BAD_EH_FRAME', fde.offset);
  }
});

test('a row handed out is a copy: changing it (its map, its CFA, a rule) changes no later answer', async () => {
  const elf = readElf(readFileSync((await buildFixtures()).nonPie));
  const fde = fdesOf(elf).find((f) => f.end - f.start > 8n && (cfiRowAt(elf, f.end - 1n)?.registers.size ?? 0) > 1)!;
  const text = (row: CfiRow) => `${cfaText(row)} ${[...row.registers].map(([r, rule]) => `${r}:${ruleText(rule)}`).join(' ')}`;
  const first = cfiRowAt(elf, fde.end - 1n)!;
  const before = text(first);
  if ('offset' in first.cfa) first.cfa.offset += 100;
  for (const rule of first.registers.values()) if (rule.kind === 'offset') (rule as { offset: number }).offset = 12345;
  first.registers.set(16, { kind: 'undefined' });
  assert.is(text(cfiRowAt(elf, fde.end - 1n)!), before);
});

/** Builds a shared object whose function `rows` has the given CFI directives and body lines. */
async function craftedFde(directives: string[], body: string[]): Promise<{ elf: ElfFile; start: bigint; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'libos-cfi-crafted-'));
  writeFileSync(join(dir, 'rows.s'), ['.text', '.globl rows', '.type rows,@function', 'rows:', '.cfi_startproc', ...directives, ...body, 'ret', '.cfi_endproc', '.size rows, .-rows', ''].join('\n'));
  await run('gcc', ['-nostdlib', '-shared', join(dir, 'rows.s'), '-o', join(dir, 'rows.so')]);
  const elf = readElf(readFileSync(join(dir, 'rows.so')));
  return { elf, start: elf.symbols.find((x) => x.name === 'rows')!.value, dir };
}

test('crafted FDEs that would copy their rules quadratically: the first rows answered, the rest a typed error, the heap small', async () => {
  // N register rules (DW_CFA_offset_extended r17.., 1), then N rows (an advance before each
  // DW_CFA_nop), or N DW_CFA_remember_state: a copy of every rule per row or per remember would be
  // N * N (9 million here).
  const N = 3000;
  const rules: string[] = [];
  for (let r = 17; r < 17 + N; r++) rules.push(`.cfi_escape 0x05, ${uleb(r)}, 0x01`);
  const rowsBody: string[] = [];
  for (let i = 0; i < N; i++) rowsBody.push('nop', '.cfi_escape 0x00');
  const remembers = Array.from({ length: N }, () => '.cfi_escape 0x0a');
  for (const [what, directives, body] of [['rows', rules, rowsBody], ['remembers', [...rules, ...remembers], ['nop']]] as const) {
    const { elf, start, dir } = await craftedFde([...directives], [...body]);
    const heap = process.memoryUsage().heapUsed;
    if (what === 'rows') {
      const row = cfiRowAt(elf, start)!;
      assert.is(row.registers.size, N + 1, 'every rule at the start (and the return address)');
      assert.equal(row.registers.get(17 + N - 1), { kind: 'offset', offset: -8 });
    }
    const fde = fdesOf(elf).find((f) => f.start === start)!;
    // The rows: past the first hundred or so; the remembers: all at the start, before any row.
    for (const at of what === 'rows' ? [BigInt(N / 2), BigInt(N)] : [0n]) {
      const err = expectElfError(() => cfiRowAt(elf, start + at), 'ELF_BAD_EH_FRAME', fde.offset);
      assert.match(err.message, /more register rules to copy/);
    }
    const grown = process.memoryUsage().heapUsed - heap;
    assert.ok(grown < 200e6, `${what}: heap grew ${(grown / 1e6).toFixed(0)} MB`);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DW_CFA_set_loc back to an earlier location is ELF_BAD_EH_FRAME from there on; the rows before it still answer', async () => {
  const { bytes, fde } = await corruptible(6);
  assert.is(fde.cie.fdeEncoding & 0x7f, 0x1b, 'pcrel sdata4, as gcc writes it');
  const eh = readElf(bytes).section('.eh_frame')!;
  // advance_loc 2; set_loc fde.start (back by 2): pcrel, so the field holds start - its own address.
  const field = fde.instructions + 2;
  const fieldVa = eh.va + BigInt(field - eh.offset);
  bytes.set([0x42, 0x01], fde.instructions);
  new DataView(bytes.buffer, bytes.byteOffset).setInt32(field, Number(fde.start - fieldVa), true);
  const elf = readElf(bytes);
  assert.equal(cfiRowAt(elf, fde.start + 1n)!.cfa, { register: 7, offset: 8 }, 'the row before the move back: the CIE\'s');
  const err = expectElfError(() => cfiRowAt(elf, fde.start + 2n), 'ELF_BAD_EH_FRAME', fde.offset);
  assert.match(err.message, /moves back/);
});

test('rows come from the bytes the file was read from: a file changed in place and read again answers anew', async () => {
  const bytes = new Uint8Array(readFileSync((await buildFixtures()).nonPie));
  const fde = fdesOf(readElf(bytes)).find((f) => f.end - f.start > 16n)!;
  const before = readElf(bytes);
  assert.ok(cfiRowAt(before, fde.start + 8n) !== undefined);
  // pc_range of this FDE (right after its 4-byte pc_begin in the non-PIE fixture's encoding) to 4.
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const rangeAt = fde.offset + 12;
  assert.is(BigInt(view.getUint32(rangeAt, true)), fde.end - fde.start, 'the pc_range field');
  view.setUint32(rangeAt, 4, true);
  assert.is(cfiRowAt(readElf(bytes), fde.start + 8n), undefined, 'the new reading sees the shorter FDE');
});

test('malformed: an unknown DW_CFA opcode in the CIE is ELF_BAD_EH_FRAME at the CIE', async () => {
  const { bytes, fde } = await corruptible();
  bytes[fde.cie.instructions] = 0x3f;
  expectElfError(() => cfiRowAt(readElf(bytes), fde.start), 'ELF_BAD_EH_FRAME', fde.cie.offset);
});

test('malformed: an FDE\'s augmentation data longer than the FDE is ELF_BAD_EH_FRAME at the FDE', async () => {
  const { bytes, fde } = await corruptible();
  assert.ok(fde.cie.augmentationData, 'gcc writes a "zR" CIE');
  bytes[fde.instructions - 1] = 0x7f; // the augmentation length, 0 from gcc
  expectElfError(() => cfiRowAt(readElf(bytes), fde.start), 'ELF_BAD_EH_FRAME', fde.offset);
});

test('malformed: an FDE whose CIE pointer leaves .eh_frame is ELF_BAD_EH_FRAME at the pointer', async () => {
  const { bytes, fde } = await corruptible();
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(fde.offset + 4, 0x7fff_fff0, true);
  expectElfError(() => cfiRowAt(readElf(bytes), fde.start), 'ELF_BAD_EH_FRAME', fde.offset + 4);
});

test('malformed: an entry running past .eh_frame is ELF_BAD_EH_FRAME at the entry', async () => {
  const { bytes, fde } = await corruptible();
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(fde.offset, 0x7fff_fff0, true);
  expectElfError(() => cfiRowAt(readElf(bytes), fde.start), 'ELF_BAD_EH_FRAME', fde.offset);
});

test('malformed: an unknown FDE pointer encoding in the CIE is ELF_BAD_EH_FRAME at the first FDE that reads one', async () => {
  const { bytes, fde } = await corruptible();
  // "zR": the augmentation data is the one encoding byte, just before the CIE's instructions. The
  // first FDE of that CIE is where it is used.
  const first = fdesOf(readElf(bytes)).find((f) => f.cie.offset === fde.cie.offset)!;
  bytes[fde.cie.instructions - 1] = 0x0f;
  expectElfError(() => cfiRowAt(readElf(bytes), fde.start), 'ELF_BAD_EH_FRAME', first.offset);
});

test.run();
