// Little-endian encoders for the few ELF64 structures the writer emits. Field offsets follow the
// gABI's Elf64_Phdr, Elf64_Shdr and Elf64_Sym.

/** An Elf64_Phdr's fields. */
export interface PhdrFields {
  type: number;
  flags: number;
  offset: number;
  va: bigint;
  pa: bigint;
  filesz: number;
  memsz: number;
  align: number;
}

/** An Elf64_Shdr's fields. */
export interface ShdrFields {
  name: number;
  type: number;
  flags: bigint;
  va: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  align: number;
  entsize: number;
}

/** An Elf64_Sym's fields. */
export interface SymFields {
  name: number;
  info: number;
  other: number;
  shndx: number;
  value: bigint;
  size: number;
}

export function putPhdr(view: DataView, at: number, p: PhdrFields): void {
  view.setUint32(at, p.type, true);
  view.setUint32(at + 4, p.flags, true);
  view.setBigUint64(at + 8, BigInt(p.offset), true);
  view.setBigUint64(at + 16, p.va, true);
  view.setBigUint64(at + 24, p.pa, true);
  view.setBigUint64(at + 32, BigInt(p.filesz), true);
  view.setBigUint64(at + 40, BigInt(p.memsz), true);
  view.setBigUint64(at + 48, BigInt(p.align), true);
}

export function putShdr(view: DataView, at: number, s: ShdrFields): void {
  view.setUint32(at, s.name, true);
  view.setUint32(at + 4, s.type, true);
  view.setBigUint64(at + 8, s.flags, true);
  view.setBigUint64(at + 16, s.va, true);
  view.setBigUint64(at + 24, BigInt(s.offset), true);
  view.setBigUint64(at + 32, BigInt(s.size), true);
  view.setUint32(at + 40, s.link, true);
  view.setUint32(at + 44, s.info, true);
  view.setBigUint64(at + 48, BigInt(s.align), true);
  view.setBigUint64(at + 56, BigInt(s.entsize), true);
}

export function putSym(view: DataView, at: number, s: SymFields): void {
  view.setUint32(at, s.name, true);
  view.setUint8(at + 4, s.info);
  view.setUint8(at + 5, s.other);
  view.setUint16(at + 6, s.shndx, true);
  view.setBigUint64(at + 8, s.value, true);
  view.setBigUint64(at + 16, BigInt(s.size), true);
}

/** A DataView over exactly the bytes of `bytes`. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
