/**
 * Per-site code: the bytes that replace a site, and the site's own trampoline.
 *
 * A trampoline routes the calls that must not go through a stack-keeping stub (rt_sigreturn,
 * vfork, clone with a new stack or sharing memory, clone3) to a native `syscall` of the site's own
 * and sends every other call to the shared stub. Its checks change no flag: `lea` computes
 * `nr - N` into rcx (free: `syscall` clobbers it) and `jrcxz` branches on zero. With several
 * numbers to check, a 256-byte table indexed by the number's low byte (r11, also free) first sends
 * every call whose low byte matches none of them past the checks: one load and one branch
 * instead of a compare and a branch per number.
 */
import { Assembler, nopBytes, type Label, type Target, rcx, rsp, edi, r11d, qword, rip } from '@libos/encoder';

export const NR_RT_SIGRETURN = 15;
export const NR_CLONE = 56;
export const NR_VFORK = 58;
export const NR_CLONE3 = 435;
export const CLONE_VM = 0x100;

/** How the site treats the calls that must be made natively. */
export type NativeRouting =
  /** No check: the number is known and never native, or the recipe lists no native calls. */
  | { kind: 'none' }
  /** The number is known and native: the trampoline is a plain `syscall`. */
  | { kind: 'always'; nr: number }
  /** Checked at run time. */
  | { kind: 'check'; nrs: number[] };

export interface TrampolineSpec {
  name: string;
  /** Where the call returns: after the site, or into the trampoline when neighbours were moved. */
  resumeVa: Target;
  /** Emitted first: instructions moved from before the site. */
  prologue?: (a: Assembler) => void;
  /** The prologue's length in bytes (moved instructions keep their lengths). */
  prologueLength?: number;
  /** Whether the site's own bytes already set rcx to the resume address (the seed's sequence). */
  rcxSet: boolean;
  routing: NativeRouting;
  /** Emits the jump that takes an intercepted call to its stub or entry (rcx = resume is set). */
  emitIntercept: (a: Assembler) => void;
  /** Its length in bytes (a jmp rel32 5, jmp *disp(%rip) 6, jmp *%gs:disp32 8, or a stub copy's fixed length). */
  interceptLength: number;
  /** For the rare paths (a fork-like clone): a plain jump, where emitIntercept copies a whole stub. */
  emitRareIntercept?: (a: Assembler) => void;
  /** The note stub, when native calls must be traced. */
  noteStub?: Target;
  /**
   * The 256-byte table of the numbers' low bytes (0 where some number checked has that low byte),
   * for checks of two or more numbers; see {@link nativeLowByteTable}. Without it every number is compared.
   */
  lowByteTable?: (nrs: readonly number[]) => Target;
}

/** The table behind {@link TrampolineSpec.lowByteTable}: byte i is 0 when some of `nrs` has low byte i, else 1. */
export function nativeLowByteTable(nrs: readonly number[]): Uint8Array {
  const table = new Uint8Array(256);
  table.fill(1);
  for (const nr of nrs) table[nr & 0xff] = 0;
  return table;
}

/** `lea rcx,[rax-nr]` in its disp32 form and `jrcxz` by `disp8`: 9 bytes, known before encoding. */
function checkBytes(nr: number, disp8: number): number[] {
  const imm = (-nr) >>> 0;
  return [0x48, 0x8d, 0x88, imm & 0xff, (imm >>> 8) & 0xff, (imm >>> 16) & 0xff, (imm >>> 24) & 0xff, 0xe3, disp8 & 0xff];
}

/** Whether a site needs a trampoline of its own (else it jumps straight to the stub). */
export function needsTrampoline(spec: Pick<TrampolineSpec, 'rcxSet' | 'routing' | 'prologue'>, interceptIsDirect: boolean): boolean {
  return !spec.rcxSet || spec.routing.kind !== 'none' || !interceptIsDirect || spec.prologue !== undefined;
}

/** Emits a site's trampoline at the assembler's current position; returns its entry label. */
export function emitTrampoline(a: Assembler, spec: TrampolineSpec): Label {
  const start = a.label(spec.name);
  const routing = spec.routing;
  if (routing.kind !== 'check') {
    a.bind(start);
    spec.prologue?.(a);
    if (routing.kind === 'always') emitNative(a, spec, routing.nr);
    else emitContinue(a, spec);
    return start;
  }
  // The checks below overwrite rcx, so the continue path must set it again even where the site did.
  spec = { ...spec, rcxSet: false };
  // Checks: lea rcx,[rax-N] (disp32 form, 7 bytes) ; jrcxz PAD_k, every rel8 known before encoding.
  // The pads (jmp rel32 to each native path) sit right after the fixed-size continue path, or,
  // when a long continue path (a stub copied in) puts them out of rel8 reach, right before the
  // trampoline's entry.
  const contLength = continueLength(spec);
  const checks = routing.nrs;
  const padSize = 5; // jmp rel32, forced near
  const checkSize = 9;
  const targets = checks.map(() => a.label());
  // A table in front of the checks (see the file's comment), laid out so that the common case runs
  // straight on: a taken branch costs more than the compares it skips.
  if (checks.length >= 2 && spec.lowByteTable !== undefined && contLength <= 127) {
    const cont = a.label();
    const backSize = 5; // jmp rel32 back to the continue path, forced near
    a.bind(start);
    spec.prologue?.(a);
    a.bytes([0x44, 0x0f, 0xb6, 0xd8]); // movzbl %al, %r11d
    a.lea(rcx, rip(spec.lowByteTable(checks)));
    a.bytes([0x42, 0x0f, 0xb6, 0x0c, 0x19]); // movzbl (%rcx,%r11,1), %ecx
    a.bytes([0xe3, contLength]); // jrcxz to the checks: a low byte some checked number has
    a.bind(cont);
    emitContinue(a, spec);
    checks.forEach((nr, k) => {
      const disp8 = (checks.length - k - 1) * checkSize + backSize + k * padSize;
      if (disp8 > 127) throw new Error(`internal: trampoline check block too long (${disp8})`);
      a.bytes(checkBytes(nr, disp8));
    });
    a.jmp(cont, { near: true });
    for (const t of targets) a.jmp(t, { near: true });
  } else {
    const forward = (checks.length - 1) * checkSize + contLength <= 127;
    if (!forward) {
      for (const t of targets) a.jmp(t, { near: true });
    }
    a.bind(start);
    spec.prologue?.(a);
    checks.forEach((nr, k) => {
      const disp8 = forward
        ? (checks.length - k - 1) * checkSize + contLength + k * padSize
        : k * padSize - (checks.length * padSize + (spec.prologueLength ?? 0) + (k + 1) * checkSize);
      if (disp8 > 127 || disp8 < -128) throw new Error(`internal: trampoline check block too long (${disp8})`);
      a.bytes(checkBytes(nr, disp8));
    });
    emitContinue(a, spec);
    if (forward) {
      for (const t of targets) a.jmp(t, { near: true });
    }
  }
  checks.forEach((nr, k) => {
    a.bind(targets[k]!);
    if (nr === NR_CLONE) emitCloneCheck(a, spec);
    else emitNative(a, spec, nr);
  });
  return start;
}

function continueLength(spec: TrampolineSpec): number {
  return (spec.rcxSet ? 0 : 7) + spec.interceptLength; // lea rcx,[rip+disp32] is 7 bytes
}

/** The intercepted path: set rcx if the site did not, then jump to the stub or entry. */
function emitContinue(a: Assembler, spec: TrampolineSpec): void {
  if (!spec.rcxSet) a.lea(rcx, rip(spec.resumeVa));
  spec.emitIntercept(a);
}

/**
 * clone: natively when it gets a new stack (rsi != 0: the child returns on a stack where the
 * stub's saved values are not) or shares the memory without one (CLONE_VM: the child runs on
 * the parent's stack and overwrites what the stub saved); a fork-like clone goes through the stub,
 * so both processes are seen.
 */
function emitCloneCheck(a: Assembler, spec: TrampolineSpec): void {
  const native = a.label();
  const vmShared = a.label();
  // mov rcx,rsi ; jrcxz +5 (no new stack: check CLONE_VM) ; jmp native
  a.bytes([0x48, 0x89, 0xf1, 0xe3, 0x05]);
  a.jmp(native, { near: true });
  // Flags are about to change: save them below the red zone (nothing live is there).
  a.lea(rsp, qword(rsp, -128));
  a.pushfq();
  a.test(edi, CLONE_VM);
  a.jne(vmShared);
  a.popfq();
  a.lea(rsp, qword(rsp, 128));
  emitContinue(a, spec.emitRareIntercept !== undefined ? { ...spec, emitIntercept: spec.emitRareIntercept } : spec);
  a.bind(vmShared);
  a.popfq();
  a.lea(rsp, qword(rsp, 128));
  a.bind(native);
  emitNative(a, spec, NR_CLONE);
}

/** A native call at the site: `syscall`, then back, with a trace note where asked for. */
function emitNative(a: Assembler, spec: TrampolineSpec, nr: number): void {
  const note = spec.noteStub;
  if (note !== undefined && nr === NR_RT_SIGRETURN) {
    // It does not return: note it before.
    const after = a.label();
    a.mov(r11d, nr);
    a.lea(rcx, rip(after));
    a.jmp(note, { near: true });
    a.bind(after);
  }
  a.syscall();
  a.lea(rcx, rip(spec.resumeVa));
  if (note !== undefined && nr !== NR_RT_SIGRETURN) {
    // After the call, in each process that returns from it (vfork and clone: parent and child).
    a.mov(r11d, nr);
    a.jmp(note, { near: true });
    return;
  }
  a.jmp(spec.resumeVa, { near: true });
}

/** Encodes the bytes that replace a site, filled with NOPs to its room. */
export function encodeSitePatch(
  variant: 'rel32' | 'rel32-site' | 'abs64' | 'abs64-hop' | 'trap' | 'displace',
  site: { va: bigint; room: number },
  resumeVa: bigint,
  target: bigint,
  trapInstruction: 'ud2' | 'int3' = 'ud2',
): Uint8Array {
  // The common forms are two fixed instructions: written directly (a site is encoded per site of
  // a file, thousands in a libc), with the same bytes the assembler gives (tests compare them).
  const out = new Uint8Array(site.room);
  const view = new DataView(out.buffer);
  const rel32 = (at: number, from: bigint, to: bigint) => {
    const d = to - from;
    if (d < -0x80000000n || d > 0x7fffffffn) throw new Error(`internal: rel32 out of reach at 0x${site.va.toString(16)}`);
    view.setInt32(at, Number(d), true);
  };
  let used: number;
  let fill: 'nop' | 'int3' = 'nop';
  switch (variant) {
    case 'rel32':
    case 'abs64-hop':
      out.set([0x48, 0x8d, 0x0d], 0); // lea rcx, [rip + disp32]
      rel32(3, site.va + 7n, resumeVa);
      out[7] = 0xe9; // jmp rel32
      rel32(8, site.va + 12n, target);
      used = 12;
      break;
    case 'rel32-site':
    case 'displace':
      out[0] = 0xe9;
      rel32(1, site.va + 5n, target);
      used = 5;
      // The rest of a displaced window held moved instructions: int3, so a stray jump into it traps
      // at once instead of skipping them silently.
      if (variant === 'displace') fill = 'int3';
      break;
    case 'trap':
      if (trapInstruction === 'ud2') out.set([0x0f, 0x0b], 0);
      else out[0] = 0xcc;
      used = trapInstruction === 'ud2' ? 2 : 1;
      break;
    case 'abs64': {
      const a = new Assembler();
      a.lea(rcx, rip(resumeVa));
      a.jmp(qword(rip, 0));
      a.qword(target);
      const code = a.encode({ va: site.va }).bytes;
      out.set(code, 0);
      used = code.length;
      break;
    }
  }
  if (used > site.room) throw new Error(`internal: ${variant} patch of ${used} bytes in a room of ${site.room}`);
  if (fill === 'int3') {
    out.fill(0xcc, used);
  } else {
    // GNU as's NOPs, longest first (1 to 11 bytes each).
    for (let at = used; at < site.room;) {
      const n = Math.min(11, site.room - at);
      out.set(nopBytes(n), at);
      at += n;
    }
  }
  return out;
}

/** Bytes each variant needs at the site. */
export const VARIANT_SIZE = { rel32: 12, 'rel32-site': 5, abs64: 21, 'abs64-hop': 12, trap: 1 } as const;

