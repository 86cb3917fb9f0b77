import type { ElfFile } from '@libos/elfkit';

/** The note type of Go's build id (`Go` owner), in .note.go.buildid. */
const NT_GO_BUILDID = 4;

/**
 * Whether `elf` was built by the Go toolchain: its build-id note, or the sections its runtime and
 * `go version -m` read (kept by strip). Go's internal register ABI passes up to nine integer
 * arguments and results in rax, rbx, rcx, rdi, rsi, r8, r9, r10 and r11, so proofs that trust
 * the SysV ABI at calls and returns do not hold in its code.
 */
export function isGoBinary(elf: Pick<ElfFile, 'notes' | 'section'>): boolean {
  if (elf.section('.go.buildinfo') !== undefined || elf.section('.gopclntab') !== undefined) return true;
  return elf.notes.some((n) => n.name === 'Go' && n.type === NT_GO_BUILDID);
}
