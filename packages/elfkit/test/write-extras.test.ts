// The optional parts of an edit: a new entry point, a .debug_frame for the added code, symbols
// added to a file's .symtab or to a new one when the file is stripped.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import {
  planLayout, PT_LOAD, readElf, revertElf, SHT_NOBITS, SHT_STRTAB, SHT_SYMTAB, STB_GLOBAL, STT_FUNC, STT_OBJECT, writeElf,
  type ElfFile,
} from '../src/index.js';
import { jumpEdit, load, run, removeTempDirs, tempDir, writeExecutable } from './write-support.js';

const test = suite('writeElf: entry, .debug_frame, symbols');
let fx: Fixtures;
let dir: string;

test.before(async () => {
  fx = await buildFixtures();
  dir = tempDir();
});

/** A .libos.text holding `jmp <old entry>`, made the new entry point. */
function entryEdit(elf: ElfFile): { bytes: Uint8Array; va: bigint } {
  const [text] = planLayout(elf, [{ name: '.libos.text', size: 16, flags: 'rx' }]);
  const code = new Uint8Array(16).fill(0xcc);
  code[0] = 0xe9;
  new DataView(code.buffer).setInt32(1, Number(elf.header.entry - (text!.va + 5n)), true);
  const bytes = writeElf(elf, {
    patches: [],
    segments: [{ name: '.libos.text', va: text!.va, flags: 'rx', bytes: code }],
    symbols: [{ name: 'libos_entry', va: text!.va, size: 5, type: 'func' }],
    entry: text!.va,
  });
  return { bytes, va: text!.va };
}

for (const name of ['nonPie', 'pie', 'static', 'staticPie'] as const) {
  test(`${name}: a new entry point in the added code runs first, then the program as before`, async () => {
    const { elf, input } = load(fx[name]);
    const { bytes, va } = entryEdit(elf);
    assert.is(readElf(bytes).header.entry, va);
    const out = writeExecutable(dir, `${name}.entry`, bytes);
    const before = await run(fx[name], []);
    const after = await run(out, []);
    assert.is(after.stdout, before.stdout);
    assert.is(after.status, before.status);
    const g = await run('gdb', ['-nx', '-batch', '-ex', 'break libos_entry', '-ex', 'run', '-ex', 'info symbol $pc', out]);
    assert.match(g.stdout, /libos_entry in section \.libos\.text/, `${g.stdout}\n${g.stderr}`);
    assert.ok(Buffer.from(revertElf(bytes)).equals(input), 'e_entry comes back on revert');
  });
}

/**
 * A minimal .debug_frame: a CIE (CFA = rsp + 8, return address at CFA - 8) and one FDE for
 * [start, start + length) that sets the CFA to rsp + `cfa` and the saved registers to CFA - n.
 */
function debugFrame(start: bigint, length: number, cfa: number, saved: [number, number][]): Uint8Array {
  const pad = (b: number[]): number[] => [...b, ...new Array((8 - ((b.length + 4) % 8)) % 8).fill(0)];
  const cie = pad([
    ...u32(0xffffffff), 1, 0, 1, 0x78, 16, // id, version 1, "", code align 1, data align -8, RA r16
    0x0c, 7, 8, 0x90, 1, // def_cfa rsp+8; offset r16 at cfa-8
  ]);
  const instructions = [0x0e, ...uleb(cfa), ...saved.filter(([r]) => r !== 16).flatMap(([r, n]) => [0x80 | r, ...uleb(n / 8)])];
  const fde = pad([...u32(0), ...u64(start), ...u64(BigInt(length)), ...instructions]);
  return Uint8Array.from([...u32(cie.length), ...cie, ...u32(fde.length), ...fde]);
}
function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    const b = v & 0x7f;
    v >>>= 7;
    out.push(v !== 0 ? b | 0x80 : b);
  } while (v !== 0);
  return out;
}
function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}
function u64(v: bigint): number[] {
  return [...u32(Number(v & 0xffffffffn)), ...u32(Number(v >> 32n))];
}

/** DWARF register numbers of x86-64 (psABI), by the names readelf prints. */
const DWARF_REGS: Record<string, number> = {
  rax: 0, rdx: 1, rcx: 2, rbx: 3, rsi: 4, rdi: 5, rbp: 6, rsp: 7,
  r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15, ra: 16,
};

/**
 * The CFA offset (from rsp) and saved-register offsets in effect at `va`, from
 * `readelf --debug-dump=frames-interp` of the original: what a trampoline entered by a jmp from
 * that site must describe, since the stack is exactly as it was at the site.
 */
async function rowAt(path: string, va: bigint): Promise<{ cfa: number; saved: [number, number][] }> {
  const text = (await run('readelf', ['--debug-dump=frames-interp', '-W', path])).stdout;
  for (const block of text.split('\n\n')) {
    const fde = /FDE cie=\S+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(block);
    if (fde === null || va < BigInt(`0x${fde[1]}`) || va >= BigInt(`0x${fde[2]}`)) continue;
    const lines = block.split('\n');
    const header = lines.find((l) => l.trim().startsWith('LOC'))!.trim().split(/\s+/);
    let row: string[] | undefined;
    for (const l of lines) {
      const cells = l.trim().split(/\s+/);
      if (/^[0-9a-f]{16}$/.test(cells[0]!) && BigInt(`0x${cells[0]}`) <= va) row = cells;
    }
    const cfa = /^rsp\+(\d+)$/.exec(row![1]!);
    if (cfa === null) throw new Error(`CFA at 0x${va.toString(16)} is not rsp-based: ${row![1]}`);
    const saved: [number, number][] = [];
    header.slice(2).forEach((reg, i) => {
      const m = /^c-(\d+)$/.exec(row![i + 2] ?? '');
      if (m !== null) saved.push([DWARF_REGS[reg]!, Number(m[1])]);
    });
    return { cfa: Number(cfa[1]), saved };
  }
  throw new Error(`no FDE covers 0x${va.toString(16)}`);
}

test('debugFrame goes into a non-alloc .debug_frame; readelf decodes it and gdb unwinds through a trampoline', async () => {
  const { elf } = load(fx.pie);
  const j = jumpEdit(elf);
  // A site inlined in main, where rsp is far from the return address: without CFI, gdb cannot
  // find main's caller from inside the trampoline.
  const main = elf.symbols.find((s) => s.name === 'main')!;
  const k = j.sites.findIndex((va) => va >= main.value && va < main.value + BigInt(main.size));
  assert.ok(k >= 0, 'main holds a site');
  const row = await rowAt(fx.pie, j.sites[k]!);
  assert.ok(row.cfa > 8, 'main has a frame at the site');
  const start = j.text.va + BigInt(k * 16);
  const frame = debugFrame(start, 16, row.cfa, row.saved);
  const bytes = writeElf(elf, { ...j.edit, debugFrame: frame });
  const re = readElf(bytes);
  const section = re.section('.debug_frame')!;
  assert.is(section.flags, 0n, 'not loaded');
  assert.equal([...bytes.subarray(section.offset, section.offset + section.size)], [...frame]);
  const out = writeExecutable(dir, 'pie.frame', bytes);
  const frames = await run('readelf', ['--debug-dump=frames', '-W', out]);
  assert.is(frames.stderr, '');
  const hex = (v: bigint): string => v.toString(16).padStart(16, '0');
  assert.ok(frames.stdout.includes(`pc=${hex(start)}..${hex(start + 16n)}`), frames.stdout);
  const bt = async (path: string): Promise<string> =>
    (await run('gdb', ['-nx', '-batch', '-ex', `break ${j.names[k]}`, '-ex', 'run', '-ex', 'bt', path])).stdout;
  // With the CFI, frame #1 is main's caller in libc; without it (same edit), it is not.
  const caller = /#1 +0x[0-9a-f]+ in (\S+)/;
  const withCfi = caller.exec(await bt(out))?.[1];
  assert.ok(withCfi !== undefined && withCfi.includes('libc_start'), `with CFI: ${withCfi}`);
  const plain = writeExecutable(dir, 'pie.noframe', writeElf(elf, j.edit));
  assert.is.not(caller.exec(await bt(plain))?.[1], withCfi);
  const after = await run(out, []);
  assert.is(after.status, 42);
});

test('symbols are appended to .symtab as globals after the original entries', () => {
  const { elf } = load(fx.static);
  const j = jumpEdit(elf, { counter: true });
  const re = readElf(writeElf(elf, j.edit));
  assert.equal(re.symbols.slice(0, elf.symbols.length).map((s) => [s.name, s.value]), elf.symbols.map((s) => [s.name, s.value]));
  const added = re.symbols.slice(elf.symbols.length);
  assert.equal(added.map((s) => s.name), [...j.names, 'libos_counter']);
  const textIndex = re.section('.libos.text')!.index;
  assert.ok(added.slice(0, -1).every((s) => s.type === STT_FUNC && s.bind === STB_GLOBAL && s.section === textIndex));
  assert.is(added.at(-1)!.type, STT_OBJECT);
  assert.is(added.at(-1)!.section, re.section('.libos.data')!.index);
  assert.is(re.section('.symtab')!.info, elf.section('.symtab')!.info, 'sh_info (first global) unchanged');
});

test('a stripped file gets a new .symtab and .strtab holding only the added symbols', async () => {
  const { elf } = load(fx.stripped);
  assert.is(elf.section('.symtab'), undefined);
  const j = jumpEdit(elf);
  const bytes = writeElf(elf, j.edit);
  const re = readElf(bytes);
  const symtab = re.section('.symtab')!;
  assert.is(symtab.type, SHT_SYMTAB);
  assert.is(re.sections[symtab.link]!.name, '.strtab');
  assert.is(re.sections[symtab.link]!.type, SHT_STRTAB);
  assert.is(symtab.info, 1);
  assert.equal(re.symbols.map((s) => s.name), ['', ...j.names]);
  const out = writeExecutable(dir, 'stripped.syms', bytes);
  const nm = await run('nm', [out]);
  assert.is(nm.stderr, '');
  assert.is(nm.stdout.split('\n').filter((l) => / T libos_trampoline_\d+$/.test(l)).length, j.names.length);
});

test('the section header table is a copy plus the new entries; the original one stays in place, unused', () => {
  const { elf, input } = load(fx.nonPie);
  const j = jumpEdit(elf, { counter: true });
  const re = readElf(writeElf(elf, j.edit));
  assert.ok(re.header.shoff >= input.length, 'the new table is appended');
  const copied = re.sections.slice(0, elf.sections.length);
  assert.equal(copied.map((s) => [s.name, s.type, s.va, s.flags]), elf.sections.map((s) => [s.name, s.type, s.va, s.flags]));
  assert.equal(re.sections.slice(elf.sections.length).map((s) => s.name), ['.libos.text', '.libos.data', '.libos.data.bss', '.libos.plan']);
  assert.is(re.sections[re.header.shstrndx]!.name, '.shstrtab');
});

test('a file without section headers gets a table of the added sections and a new .shstrtab', async () => {
  const { input } = load(fx.pie);
  // The edit is planned on the full file: without sections the annotation tables cannot be found.
  const j = jumpEdit(readElf(input));
  const bare = Buffer.from(input);
  const view = new DataView(bare.buffer, bare.byteOffset, bare.byteLength);
  view.setBigUint64(40, 0n, true); // e_shoff
  view.setUint16(60, 0, true); // e_shnum
  view.setUint16(62, 0, true); // e_shstrndx
  const elf = readElf(bare);
  assert.is(elf.sections.length, 0);
  const bytes = writeElf(elf, j.edit);
  const re = readElf(bytes);
  assert.equal(re.sections.map((s) => s.name), ['', '.libos.text', '.symtab', '.strtab', '.libos.plan', '.shstrtab']);
  assert.ok(Buffer.from(revertElf(bytes)).equals(bare));
  const out = writeExecutable(dir, 'bare.out', bytes);
  const after = await run(out, []);
  assert.is(after.status, 42);
  assert.is(after.stdout, (await run(fx.pie, [])).stdout);
  // With section headers present, readelf cross-checks PT_DYNAMIC against a .dynamic section,
  // which a file stripped of its section headers cannot name: that one complaint is expected.
  const complaints = (await run('readelf', ['-a', '-W', out])).stderr.split('\n').filter((l) => l !== '');
  assert.ok(complaints.every((l) => l === 'readelf: Error: no .dynamic section in the dynamic segment'), complaints.join('\n'));
  assert.ok((await run('objdump', ['-d', out])).stdout.includes(`<${j.names[0]}>:`));
});

for (const name of ['static', 'pie'] as const) {
  test(`${name}: a patch-only edit keeps the program header table where it was`, async () => {
    const { elf, input } = load(fx[name]);
    // Each site's 10 one-byte NOPs become one 10-byte NOP (nopw %cs:0(%rax,%rax,1)).
    const nop10 = Uint8Array.of(0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00);
    const patches = elf.syscallAnnotations().map((a) => ({ offset: elf.vaToOffset(a.site)! + 2, bytes: nop10 }));
    const bytes = writeElf(elf, { patches, segments: [] });
    const re = readElf(bytes);
    assert.is(re.header.phoff, elf.header.phoff);
    assert.is(re.header.phnum, elf.header.phnum);
    assert.ok(Buffer.from(bytes.subarray(elf.header.phoff, elf.header.phoff + elf.header.phnum * 56)).equals(input.subarray(elf.header.phoff, elf.header.phoff + elf.header.phnum * 56)));
    const out = writeExecutable(dir, `${name}.nops`, bytes);
    const objdump = await run('objdump', ['-d', out]);
    assert.ok(objdump.stdout.includes('cs nopw 0x0(%rax,%rax,1)'), 'the 10-byte NOP is there');
    const after = await run(out, []);
    assert.is(after.status, 42);
    assert.is(after.stdout, (await run(fx[name], [])).stdout);
    assert.ok(Buffer.from(revertElf(bytes)).equals(input));
  });

  test(`${name}: a segment with no file bytes (all zero-filled) is a NOBITS section and maps`, async () => {
    const { elf } = load(fx[name]);
    const j = jumpEdit(elf, { counter: true });
    const data = j.edit.segments[1]!;
    const bytes = writeElf(elf, { ...j.edit, segments: [j.edit.segments[0]!, { ...data, bytes: new Uint8Array(0), memsz: 64 }] });
    const re = readElf(bytes);
    const section = re.section('.libos.data')!;
    assert.is(section.type, SHT_NOBITS);
    assert.is(re.section('.libos.data.bss'), undefined);
    const segment = re.segments.find((s) => s.type === PT_LOAD && s.va === data.va)!;
    assert.is(segment.filesz, 0);
    assert.is(segment.memsz, 64);
    const out = writeExecutable(dir, `${name}.nobits`, bytes);
    const after = await run(out, []);
    assert.is(after.status, 42);
    assert.is(after.stdout, (await run(fx[name], [])).stdout);
  });
}

test.after(removeTempDirs);

test.run();
