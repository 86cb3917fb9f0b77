/**
 * Where a rewritten file runs the trap runtime's start stub before any of its own code: an
 * executable's entry point, or a shared library's initializer (DT_INIT, else the first
 * DT_INIT_ARRAY entry, whose address sits in a RELATIVE relocation's addend or, with RELR, in place).
 * The stub installs the signal handler and then goes on to what the file would have run.
 */
import type { ElfFile } from '@libos/elfkit';

const DT_INIT = 12;
const DT_INIT_ARRAY = 25;
const DT_INIT_ARRAYSZ = 27;
const R_X86_64_RELATIVE = 8;

export interface StartupHook {
  kind: 'entry' | 'dt-init' | 'init-array-rela' | 'init-array-relr';
  /** What the file runs first today; the stub jumps there when done. */
  originalVa: bigint;
  /** For library hooks: the 8 bytes that hold that address, to be replaced by the stub's. */
  offset?: number;
}

/** The hook for a file, or the reason there is none. */
export function findStartupHook(elf: ElfFile): StartupHook | string {
  if (elf.kind !== 'shared') return { kind: 'entry', originalVa: elf.header.entry };
  // The dynamic loader calls libc's __libc_early_init before any initializer, and it makes system
  // calls: a trap there would come before the handler exists.
  if (elf.dynamicSymbols.some((s) => s.name === '__libc_early_init' && s.value !== 0n)) {
    return 'the dynamic loader runs this library\'s __libc_early_init before any initializer, so a trap there would come before the handler is installed';
  }
  const dynamic = elf.section('.dynamic');
  if (dynamic === undefined) return 'the shared library has no .dynamic section to hook an initializer into';
  const entries = elf.dynamic;
  const init = entries.findIndex((e) => e.tag === DT_INIT);
  if (init >= 0) return { kind: 'dt-init', originalVa: entries[init]!.value, offset: dynamic.offset + init * 16 + 8 };
  const array = entries.find((e) => e.tag === DT_INIT_ARRAY);
  const size = entries.find((e) => e.tag === DT_INIT_ARRAYSZ);
  if (array === undefined || size === undefined || size.value < 8n) return 'the shared library has neither DT_INIT nor a DT_INIT_ARRAY entry to hook';
  // The first entry's value comes from a RELATIVE relocation's addend (RELA) or sits in place (RELR).
  for (const s of elf.sections) {
    if (s.type !== 4 /* SHT_RELA */ || s.entsize !== 24 || s.offset + s.size > elf.bytes.length) continue;
    const view = new DataView(elf.bytes.buffer, elf.bytes.byteOffset + s.offset, s.size);
    for (let at = 0; at + 24 <= s.size; at += 24) {
      if (view.getBigUint64(at, true) === array.value && Number(view.getBigUint64(at + 8, true) & 0xffffffffn) === R_X86_64_RELATIVE) {
        return { kind: 'init-array-rela', originalVa: view.getBigUint64(at + 16, true), offset: s.offset + at + 16 };
      }
    }
  }
  const relr = elf.relocations.find((r) => r.kind === 'relr' && r.offset === array.value);
  const inPlace = elf.vaToOffset(array.value);
  if (relr !== undefined && inPlace !== undefined) return { kind: 'init-array-relr', originalVa: relr.addend, offset: inPlace };
  return 'the first DT_INIT_ARRAY entry is not set by a RELATIVE relocation this version can redirect';
}
