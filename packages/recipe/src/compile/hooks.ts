/**
 * LibOS entry hooks: the code a stub calls for each intercepted system call.
 *
 * Hook convention (the one the measured stubs in shared/reference/stub-designs.S use): called with
 * `call`, the syscall's registers as the `syscall` instruction sees them (rax = number, rdi, rsi,
 * rdx, r10, r8, r9 = arguments); returns the result in rax; may clobber rcx, r11 and the flags and
 * nothing else. The stub has already stepped over the red zone, so the hook may use the stack
 * below rsp freely, but rsp has no known alignment.
 */
import {
  Assembler, type Label, type Target,
  rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13,
  eax, ebx, ecx, edx, esi, edi, cl, dl, sil,
  qword, byte, dword, mem, rip,
} from '@libos/encoder';
import { X86_64_SYSCALLS } from '../syscalls/x86-64.js';
import { ALL_SCRATCH, ScratchRegister } from '../analyze/scratch-live-after.js';
import { callRow, rbpRow, type FrameInfo } from './debug-frame.js';

/** Emits `syscall; ret`: the kernel does the work, the program sees no difference. */
export function emitPassthroughHook(a: Assembler, name: string, frames?: FrameInfo): Label {
  const start = a.label(name);
  a.bind(start);
  frames?.begin(a, callRow());
  a.syscall();
  a.ret();
  frames?.end(a);
  return start;
}

/**
 * Calls whose trace line is written before the call, because on success they do not come back
 * (exit, exit_group, execve, execveat, rt_sigreturn).
 */
export const NORETURN_SYSCALLS = [60, 231, 59, 322, 15] as const;

/** The trace line's result for a call noted before it happens (`= ?`). */
export const NO_RESULT = 0x8000000000000000n;

/** Labels of the shared trace routines, emitted once per plan. */
export interface TraceRoutines {
  /** The hook: writes the line (before or after) and makes the real call. */
  hook: Label;
  /** Note only: r11 = number, rax = result (kept), rdi rsi rdx = arguments; writes the line, for calls made natively. */
  note: Label;
}

/**
 * Emits the `trace` entry: each intercepted call writes one line to fd 2,
 * `[libos] <nr> <name>(<a1>, <a2>, <a3>) = <result>`, with the result in decimal (negative errno
 * as is) or `?` for calls that do not return. The line is built on the stack and written with one
 * raw write(2), so lines from threads do not interleave.
 */
export function emitTraceRoutines(a: Assembler, frames?: FrameInfo): TraceRoutines {
  // Unwind rows: `d` bytes pushed since the call that entered the routine.
  const at = (d: number) => frames?.set(a, callRow(8 + d));
  const hook = a.label('libos_trace_hook');
  const note = a.label('libos_trace_note');
  const format = a.label('libos_trace_format');
  const putStr = a.label();
  const putHex = a.label();
  const putDec = a.label();
  const nameTable = a.label('libos_trace_names');
  const nameOffsets = a.label('libos_trace_name_offsets');
  const hexDigits = a.label();
  const pow10 = a.label();
  const sPrefix = a.label();
  const sOpen = a.label();
  const sSep = a.label();
  const sEq = a.label();
  const sQuestion = a.label();
  const sUnknown = a.label();
  const maxNr = Math.max(...X86_64_SYSCALLS.map(([nr]) => nr));

  // The hook and the note keep rbx and r12 for the number and the result: pushed on the way in,
  // popped before each ret (with the unwind rows that go with them).
  const enter = (label: Label) => {
    a.bind(label);
    frames?.begin(a, callRow());
    a.push(rbx);
    at(8);
    a.push(r12);
    at(16);
  };
  const leave = () => {
    a.pop(r12);
    at(8);
    a.pop(rbx);
    at(0);
    a.ret();
  };

  // hook: rax = nr, args in rdi rsi rdx r10 r8 r9.
  enter(hook);
  a.mov(rbx, rax); // number
  for (const nr of NORETURN_SYSCALLS) {
    a.cmp(eax, nr);
    const next = a.label();
    a.jne(next);
    // Written before: these calls do not come back when they succeed.
    a.mov(r12, NO_RESULT);
    a.call(format);
    a.mov(rax, rbx);
    a.syscall();
    leave();
    a.bind(next);
    at(16);
  }
  a.syscall();
  a.mov(r12, rax);
  a.call(format);
  a.mov(rax, r12);
  leave();
  frames?.end(a);

  // note: r11 = nr, rax = result; keeps every register but rcx, r11 and flags.
  enter(note);
  a.mov(rbx, r11);
  a.mov(r12, rax);
  for (const nr of NORETURN_SYSCALLS) {
    a.cmp(ebx, nr);
    const next = a.label();
    a.jne(next);
    a.mov(r12, NO_RESULT);
    a.bind(next);
  }
  a.push(rax);
  at(24);
  a.call(format);
  a.pop(rax);
  at(16);
  leave();
  frames?.end(a);

  // format: rbx = nr, r12 = result or the marker, rdi rsi rdx = first arguments.
  // Keeps every register but rcx, r11, flags; builds the line in a 256-byte stack buffer.
  a.bind(format);
  frames?.begin(a, callRow());
  a.push(rax);
  at(8);
  a.push(rdx);
  at(16);
  a.push(rsi);
  at(24);
  a.push(rdi);
  at(32);
  a.push(r13);
  at(40);
  a.push(r8);
  at(48);
  a.lea(rsp, qword(rsp, -256));
  at(304);
  a.mov(r13, rdi); // a1 (rdi becomes the cursor)
  a.mov(r8, rsi); // a2; rdx keeps a3
  a.mov(rdi, rsp);
  a.lea(rsi, rip(sPrefix));
  a.call(putStr);
  a.mov(rax, rbx);
  a.call(putDec);
  a.mov(byte(rdi, 0), 0x20);
  a.lea(rdi, mem(rdi, 1));
  // name: offsets table indexed by nr; 0 means unknown.
  const unknownName = a.label();
  const haveName = a.label();
  a.cmp(rbx, maxNr);
  a.ja(unknownName);
  a.lea(r11, rip(nameOffsets));
  a.mov(ecx, dword({ base: r11, index: rbx, scale: 4 }));
  a.test(ecx, ecx);
  a.je(unknownName);
  a.lea(rsi, rip(nameTable));
  a.lea(rsi, mem({ base: rsi, index: rcx, scale: 1 }));
  a.call(putStr);
  a.jmp(haveName);
  a.bind(unknownName);
  a.lea(rsi, rip(sUnknown));
  a.call(putStr);
  a.bind(haveName);
  a.lea(rsi, rip(sOpen));
  a.call(putStr);
  a.mov(rax, r13);
  a.call(putHex);
  a.lea(rsi, rip(sSep));
  a.call(putStr);
  a.mov(rax, r8);
  a.call(putHex);
  a.lea(rsi, rip(sSep));
  a.call(putStr);
  a.mov(rax, rdx);
  a.call(putHex);
  a.lea(rsi, rip(sEq));
  a.call(putStr);
  const noResult = a.label();
  const resultDone = a.label();
  a.mov(rax, NO_RESULT);
  a.cmp(r12, rax);
  a.je(noResult);
  a.mov(rax, r12);
  a.call(putDec);
  a.jmp(resultDone);
  a.bind(noResult);
  a.lea(rsi, rip(sQuestion));
  a.call(putStr);
  a.bind(resultDone);
  a.mov(byte(rdi, 0), 0x0a);
  a.lea(rdi, mem(rdi, 1));
  // write(2, buf, len) with a raw syscall: this one is ours and never intercepted.
  a.mov(rdx, rdi);
  a.sub(rdx, rsp);
  a.mov(rsi, rsp);
  a.mov(edi, 2);
  a.mov(eax, 1);
  a.syscall();
  a.lea(rsp, qword(rsp, 256));
  at(48);
  a.pop(r8);
  a.pop(r13);
  a.pop(rdi);
  a.pop(rsi);
  a.pop(rdx);
  a.pop(rax);
  at(0);
  a.ret();
  frames?.end(a);

  // putStr: copy the NUL-terminated string at rsi to rdi; advances rdi; clobbers rsi, cl.
  {
    const loop = a.label();
    const done = a.label();
    a.bind(putStr);
    frames?.begin(a, callRow());
    a.bind(loop);
    a.mov(cl, byte(rsi, 0));
    a.test(cl, cl);
    a.je(done);
    a.mov(byte(rdi, 0), cl);
    a.lea(rdi, mem(rdi, 1));
    a.lea(rsi, mem(rsi, 1));
    a.jmp(loop);
    a.bind(done);
    a.ret();
    frames?.end(a);
  }

  // putHex: rax as 0x + lowercase hex without leading zeros; clobbers rax, rcx, rsi, r11.
  {
    const skip = a.label();
    const emit = a.label();
    a.bind(putHex);
    frames?.begin(a, callRow());
    a.mov(byte(rdi, 0), 0x30);
    a.mov(byte(rdi, 1), 0x78);
    a.lea(rdi, mem(rdi, 2));
    a.lea(r11, rip(hexDigits));
    a.mov(ecx, 60);
    a.bind(skip);
    a.mov(rsi, rax);
    a.shr(rsi, cl);
    a.and(esi, 15);
    a.jne(emit);
    a.sub(ecx, 4);
    a.jns(skip);
    a.mov(byte(rdi, 0), 0x30); // the value is zero
    a.lea(rdi, mem(rdi, 1));
    a.ret();
    a.bind(emit);
    a.mov(rsi, rax);
    a.shr(rsi, cl);
    a.and(esi, 15);
    a.movzx(esi, byte({ base: r11, index: rsi, scale: 1 }));
    a.mov(byte(rdi, 0), sil);
    a.lea(rdi, mem(rdi, 1));
    a.sub(ecx, 4);
    a.jns(emit);
    a.ret();
    frames?.end(a);
  }

  // putDec: rax as signed decimal, by subtracting powers of ten (no division needed);
  // clobbers rax, rcx, rsi, r11; keeps rdx.
  {
    const positive = a.label();
    const power = a.label();
    const count = a.label();
    const counted = a.label();
    const emitDigit = a.label();
    const nextPower = a.label();
    a.bind(putDec);
    frames?.begin(a, callRow());
    a.push(rdx);
    at(8);
    a.test(rax, rax);
    a.jns(positive);
    a.mov(byte(rdi, 0), 0x2d);
    a.lea(rdi, mem(rdi, 1));
    a.neg(rax);
    a.bind(positive);
    a.lea(r11, rip(pow10));
    a.xor(ecx, ecx);
    a.xor(esi, esi);
    a.bind(power);
    a.mov(edx, 0x30);
    a.bind(count);
    a.cmp(rax, qword({ base: r11, index: rcx, scale: 8 }));
    a.jb(counted);
    a.sub(rax, qword({ base: r11, index: rcx, scale: 8 }));
    a.inc(edx);
    a.jmp(count);
    a.bind(counted);
    a.cmp(edx, 0x30);
    a.jne(emitDigit);
    a.test(esi, esi);
    a.jne(emitDigit);
    a.cmp(ecx, 19);
    a.jne(nextPower);
    a.bind(emitDigit);
    a.mov(byte(rdi, 0), dl);
    a.lea(rdi, mem(rdi, 1));
    a.mov(esi, 1);
    a.bind(nextPower);
    a.inc(ecx);
    a.cmp(ecx, 20);
    a.jb(power);
    a.pop(rdx);
    at(0);
    a.ret();
    frames?.end(a);
  }

  // Read-only data, kept with the code: strings, the name table, digits, powers of ten.
  a.align(8);
  a.bind(pow10);
  let p = 10000000000000000000n;
  for (let i = 0; i < 20; i++) {
    a.dq(p);
    p /= 10n;
  }
  a.bind(hexDigits);
  a.raw(ascii('0123456789abcdef'));
  a.bind(sPrefix);
  a.raw(asciiz('[libos] '));
  a.bind(sOpen);
  a.raw(asciiz('('));
  a.bind(sSep);
  a.raw(asciiz(', '));
  a.bind(sEq);
  a.raw(asciiz(') = '));
  a.bind(sQuestion);
  a.raw(asciiz('?'));
  a.bind(sUnknown);
  a.raw(asciiz('unknown'));
  const { blob, offsets } = buildNameTable(maxNr);
  a.align(4);
  a.bind(nameOffsets);
  for (const off of offsets) a.dd(off);
  a.bind(nameTable);
  a.raw(blob);
  return { hook, note };
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function asciiz(s: string): Uint8Array {
  return ascii(`${s}\0`);
}

/** Names as one NUL-separated blob plus a dword offset per number (0: no name). */
function buildNameTable(maxNr: number): { blob: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(maxNr + 1);
  const parts: string[] = ['\0'];
  let at = 1;
  for (const [nr, name] of X86_64_SYSCALLS) {
    offsets[nr] = at;
    parts.push(`${name}\0`);
    at += name.length + 1;
  }
  return { blob: ascii(parts.join('')), offsets };
}

/**
 * Emits the C-handler bridge, a hook (hook convention) for the callers that need one: the seed's
 * stub and the trap runtime. The fast stub runs the same code inline (stubs.ts).
 */
export function emitCHandlerBridge(a: Assembler, name: string, handler: Target, saveVectors = false, frames?: FrameInfo): Label {
  const start = a.label(name);
  a.bind(start);
  frames?.begin(a, callRow());
  a.push(rbp);
  frames?.set(a, { ...callRow(16), registers: rbpRow().registers });
  a.mov(rbp, rsp);
  frames?.set(a, rbpRow());
  emitAlignedHandlerCall(a, handler, saveVectors);
  a.mov(rsp, rbp);
  a.pop(rbp);
  frames?.set(a, callRow());
  a.ret();
  frames?.end(a);
  return start;
}

/** Saved around the handler, in push order, with their bits in ScratchRegister. */
const HANDLER_SAVES = [[r10, ScratchRegister.r10], [r9, ScratchRegister.r9], [r8, ScratchRegister.r8], [rdx, ScratchRegister.rdx], [rsi, ScratchRegister.rsi], [rdi, ScratchRegister.rdi]] as const;

/**
 * With rbp holding rsp (restored by the caller): saves what the C ABI lets `libos_handler`
 * clobber but the syscall ABI does not (rdi, rsi, rdx, r8, r9, r10; only those of `saves` where
 * the program cannot read the others after the site), aligns the stack to 16 bytes (64 for the
 * xsave area) and calls `long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)`.
 */
export function emitAlignedHandlerCall(a: Assembler, handler: Target, saveVectors: boolean, saves: number = ALL_SCRATCH): void {
  if (saveVectors) {
    // XSAVE every state component the OS enabled (ymm and zmm upper halves included: a handler
    // built with -mavx2 ends in vzeroupper) into a 64-byte aligned area below; 4 KiB holds
    // AVX-512's 2.7 KB. The header's reserved bytes must be zero for XRSTOR.
    a.lea(rsp, qword(rsp, -4096));
    a.and(rsp, -64);
    for (let i = 0; i < 8; i++) a.mov(qword(rsp, 512 + 8 * i), 0);
    a.mov(r11, rax);
    a.mov(rcx, rdx);
    a.mov(eax, -1);
    a.mov(edx, -1);
    a.xsave64(mem(rsp, 0));
    a.mov(rax, r11);
    a.mov(rdx, rcx);
  } else {
    a.and(rsp, -16);
  }
  const saved = HANDLER_SAVES.filter(([, bit]) => (saves & bit) !== 0).map(([reg]) => reg);
  for (const reg of saved) a.push(reg);
  // The saves and the 7th argument below them keep the call 16-byte aligned.
  const pad = (saved.length + 1) % 2 === 0 ? 0 : 8;
  if (pad !== 0) a.lea(rsp, qword(rsp, -pad));
  a.push(r9); // a6, on the stack
  a.mov(r9, r8); // a5
  a.mov(r8, r10); // a4
  a.mov(rcx, rdx); // a3
  a.mov(rdx, rsi); // a2
  a.mov(rsi, rdi); // a1
  a.mov(rdi, rax); // nr
  a.call(handler);
  a.lea(rsp, qword(rsp, 8 + pad));
  for (let i = saved.length - 1; i >= 0; i--) a.pop(saved[i]!);
  if (saveVectors) {
    a.mov(r11, rax);
    a.mov(rcx, rdx);
    a.mov(eax, -1);
    a.mov(edx, -1);
    a.xrstor64(mem(rsp, 0));
    a.mov(rax, r11);
    a.mov(rdx, rcx);
  }
}
