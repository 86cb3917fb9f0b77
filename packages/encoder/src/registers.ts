/** Width in bits of a general-purpose register or a memory access. */
export type OperandSize = 8 | 16 | 32 | 64;

/**
 * A general-purpose register. `id` is the hardware number (0-15); the low three bits go into
 * ModRM/SIB/opcode and bit 3 into a REX bit. `S` carries the width in the type so that method
 * overloads can reject `mov(rax, ecx)` at compile time as well as at run time.
 */
export interface Gpr<S extends OperandSize = OperandSize> {
  readonly kind: 'gpr';
  readonly name: string;
  readonly id: number;
  readonly size: S;
  /** ah, ch, dh, bh: encodable only without a REX prefix. */
  readonly high8: boolean;
  /** spl, bpl, sil, dil: encodable only with a REX prefix (without one they mean ah..bh). */
  readonly needsRex: boolean;
}

export type Gpr64 = Gpr<64>;
export type Gpr32 = Gpr<32>;
export type Gpr16 = Gpr<16>;
export type Gpr8 = Gpr<8>;

/** A segment register, usable as a memory operand's override (fs and gs matter in 64-bit mode). */
export interface SegmentRegister {
  readonly kind: 'segment';
  readonly name: 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs';
  /** The override prefix byte. */
  readonly prefix: number;
}

function gpr<S extends OperandSize>(name: string, id: number, size: S, high8 = false, needsRex = false): Gpr<S> {
  return Object.freeze({ kind: 'gpr', name, id, size, high8, needsRex }) as Gpr<S>;
}

export const rax = gpr('rax', 0, 64);
export const rcx = gpr('rcx', 1, 64);
export const rdx = gpr('rdx', 2, 64);
export const rbx = gpr('rbx', 3, 64);
export const rsp = gpr('rsp', 4, 64);
export const rbp = gpr('rbp', 5, 64);
export const rsi = gpr('rsi', 6, 64);
export const rdi = gpr('rdi', 7, 64);
export const r8 = gpr('r8', 8, 64);
export const r9 = gpr('r9', 9, 64);
export const r10 = gpr('r10', 10, 64);
export const r11 = gpr('r11', 11, 64);
export const r12 = gpr('r12', 12, 64);
export const r13 = gpr('r13', 13, 64);
export const r14 = gpr('r14', 14, 64);
export const r15 = gpr('r15', 15, 64);

export const eax = gpr('eax', 0, 32);
export const ecx = gpr('ecx', 1, 32);
export const edx = gpr('edx', 2, 32);
export const ebx = gpr('ebx', 3, 32);
export const esp = gpr('esp', 4, 32);
export const ebp = gpr('ebp', 5, 32);
export const esi = gpr('esi', 6, 32);
export const edi = gpr('edi', 7, 32);
export const r8d = gpr('r8d', 8, 32);
export const r9d = gpr('r9d', 9, 32);
export const r10d = gpr('r10d', 10, 32);
export const r11d = gpr('r11d', 11, 32);
export const r12d = gpr('r12d', 12, 32);
export const r13d = gpr('r13d', 13, 32);
export const r14d = gpr('r14d', 14, 32);
export const r15d = gpr('r15d', 15, 32);

export const ax = gpr('ax', 0, 16);
export const cx = gpr('cx', 1, 16);
export const dx = gpr('dx', 2, 16);
export const bx = gpr('bx', 3, 16);
export const sp = gpr('sp', 4, 16);
export const bp = gpr('bp', 5, 16);
export const si = gpr('si', 6, 16);
export const di = gpr('di', 7, 16);
export const r8w = gpr('r8w', 8, 16);
export const r9w = gpr('r9w', 9, 16);
export const r10w = gpr('r10w', 10, 16);
export const r11w = gpr('r11w', 11, 16);
export const r12w = gpr('r12w', 12, 16);
export const r13w = gpr('r13w', 13, 16);
export const r14w = gpr('r14w', 14, 16);
export const r15w = gpr('r15w', 15, 16);

export const al = gpr('al', 0, 8);
export const cl = gpr('cl', 1, 8);
export const dl = gpr('dl', 2, 8);
export const bl = gpr('bl', 3, 8);
export const spl = gpr('spl', 4, 8, false, true);
export const bpl = gpr('bpl', 5, 8, false, true);
export const sil = gpr('sil', 6, 8, false, true);
export const dil = gpr('dil', 7, 8, false, true);
export const r8b = gpr('r8b', 8, 8);
export const r9b = gpr('r9b', 9, 8);
export const r10b = gpr('r10b', 10, 8);
export const r11b = gpr('r11b', 11, 8);
export const r12b = gpr('r12b', 12, 8);
export const r13b = gpr('r13b', 13, 8);
export const r14b = gpr('r14b', 14, 8);
export const r15b = gpr('r15b', 15, 8);
/** The legacy high-byte registers share hardware numbers 4-7 with spl..dil; they forbid REX. */
export const ah = gpr('ah', 4, 8, true);
export const ch = gpr('ch', 5, 8, true);
export const dh = gpr('dh', 6, 8, true);
export const bh = gpr('bh', 7, 8, true);

function segment(name: SegmentRegister['name'], prefix: number): SegmentRegister {
  return Object.freeze({ kind: 'segment', name, prefix });
}

export const es = segment('es', 0x26);
export const cs = segment('cs', 0x2e);
export const ss = segment('ss', 0x36);
export const ds = segment('ds', 0x3e);
export const fs = segment('fs', 0x64);
export const gs = segment('gs', 0x65);

/** Every GPR of one width, indexed by hardware number (tables for tests and decoders). */
export const gpr64: readonly Gpr64[] = [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15];
export const gpr32: readonly Gpr32[] = [eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d];
export const gpr16: readonly Gpr16[] = [ax, cx, dx, bx, sp, bp, si, di, r8w, r9w, r10w, r11w, r12w, r13w, r14w, r15w];
/** The 8-bit registers encodable with REX, by hardware number (spl..dil at 4-7). */
export const gpr8: readonly Gpr8[] = [al, cl, dl, bl, spl, bpl, sil, dil, r8b, r9b, r10b, r11b, r12b, r13b, r14b, r15b];
/** ah, ch, dh, bh (hardware numbers 4-7 without REX). */
export const gpr8High: readonly Gpr8[] = [ah, ch, dh, bh];
