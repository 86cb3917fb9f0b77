/**
 * Shared stubs: entered by `jmp` with rcx = the resume address and the syscall's registers as
 * `syscall` sees them; they run the entry (see hooks.ts) and return with `jmp *%rcx`, leaving every
 * register as the `syscall` instruction would (rax = result, rcx = resume address, r11 = rflags),
 * unless the recipe relaxes that.
 */
import { Assembler, type Label, type Target, rax, rbp, rcx, r11, rsp, al, qword, rip } from '@libos/encoder';
import type { EntryEffects } from '../analyze/entry-effects.js';
import { emitMoved, type MovedInstruction } from './displace.js';
import { emitAlignedHandlerCall } from './hooks.js';
import { ALL_SCRATCH, scratchNames } from '../analyze/scratch-live-after.js';
import type { FlagsPolicy, RcxR11Policy, RedZonePolicy, StubKind } from '../model.js';
import { stubRow, type FrameInfo, type FrameRow } from './debug-frame.js';

/** What a stub keeps; one stub is emitted per distinct shape a plan uses. */
export interface StubShape {
  kind: StubKind;
  /** 'clobber-if-dead' is decided per site before a shape is chosen. */
  flags: Exclude<FlagsPolicy, 'clobber-if-dead'>;
  redZone: RedZonePolicy;
  rcxR11: RcxR11Policy;
  /** Decoding proved the program never reads r11 after the sites of this shape: no need to set it. */
  r11Dead?: boolean;
  /**
   * Around a C handler: the registers of analyze/scratch-live-after.ts's ScratchRegister to save
   * (those the program may read after the sites of this shape); all six when absent.
   */
  handlerSaves?: number;
}

export function stubName(shape: StubShape): string {
  if (shape.kind === 'seed') return 'libos_stub_seed';
  const flags = shape.flags === 'preserve' ? 'lahf' : shape.flags === 'preserve-all' ? 'pushf' : 'noflags';
  const rz = shape.redZone === 'preserve' ? 'rz' : 'norz';
  const r11 = setsR11(shape) ? '' : '_nor11';
  const saves = shape.handlerSaves === undefined ? '' : `_keep${shape.handlerSaves === 0 ? 'none' : scratchNames(shape.handlerSaves).replaceAll(', ', '_')}`;
  return `libos_stub_${flags}_${rz}${r11}${saves}`;
}

/** Whether the stub leaves r11 = rflags, as `syscall` does. */
export function setsR11(shape: StubShape): boolean {
  return shape.kind === 'seed' || (shape.rcxR11 !== 'clobber' && shape.r11Dead !== true);
}

/**
 * What a stub runs for the call: a `call` of a hook, an entry's body copied in (see
 * analyze/entry-effects.ts), the `syscall` itself (passthrough), or a C handler called through
 * the SysV ABI. `effects` says what the hook can change, so that the stub keeps only that.
 */
export type StubCall =
  | { kind: 'call'; target: Target; effects: EntryEffects }
  | { kind: 'inline'; body: readonly MovedInstruction[]; effects: EntryEffects }
  | { kind: 'syscall' }
  | { kind: 'c-handler'; handler: Target; saveVectors: boolean };

/** The kernel keeps the flags and sets rcx and r11 itself. */
const SYSCALL_EFFECTS: EntryEffects = { writesFlags: false, writesRcx: true, writesR11: true, usesStack: false, reason: 'syscall' };
/** Marshalling the arguments writes rcx; the C function may write anything the SysV ABI lets it. */
const C_HANDLER_EFFECTS: EntryEffects = { writesFlags: true, writesRcx: true, writesR11: true, usesStack: true, reason: 'C handler' };

/**
 * Emits instructions that move rsp and keeps the unwind row in step: `below` is how far rsp is
 * under the site's rsp (the CFA), `ra` where the resume address (rcx) was saved, if it was.
 * Between enterRbpFrame and leaveRbpFrame the CFA is rbp-based (rsp was aligned by `and`).
 */
class StubStack {
  private below = 0;
  private ra: number | undefined;
  private rbpAt: number | undefined;

  /**
   * `base`: the row of the function a trampoline stands in for, when the stub runs as a copy inside
   * that trampoline (CFA = rsp + offset there); the rows then follow that function's frame.
   */
  constructor(private readonly a: Assembler, private readonly frames: FrameInfo | undefined, private readonly base?: RspFrameRow) {
    if (base === undefined) frames?.begin(a, stubRow(0));
  }

  private row(): void {
    if (this.frames === undefined) return;
    if (this.base !== undefined) {
      const k = this.base.cfa.offset;
      // The function's rules hold throughout (rows are not changed once recorded): shared, except
      // inside the rbp frame, where rbp's own rule is ours.
      const registers = this.rbpAt === undefined ? this.base.registers : new Map(this.base.registers);
      if (this.rbpAt !== undefined) registers.set(RBP_DWARF, { kind: 'offset', offset: -(k + this.rbpAt) });
      const cfa = this.rbpAt !== undefined ? { register: RBP_DWARF, offset: k + this.rbpAt } : { register: RSP_DWARF, offset: k + this.below };
      this.frames.set(this.a, { cfa, registers });
      return;
    }
    const row = stubRow(this.below, this.ra);
    if (this.rbpAt !== undefined) {
      row.cfa = { register: RBP_DWARF, offset: this.rbpAt };
      row.registers.set(RBP_DWARF, { kind: 'offset', offset: -this.rbpAt });
    }
    this.frames.set(this.a, row);
  }

  /** `lea rsp, [rsp - n]` (no flag changes), or `sub` when the flags are already saved. */
  lower(n: number, withSub = false): void {
    if (withSub) this.a.sub(rsp, n);
    else this.a.lea(rsp, qword(rsp, -n));
    this.below += n;
    this.row();
  }

  raise(n: number, withAdd = false): void {
    if (withAdd) this.a.add(rsp, n);
    else this.a.lea(rsp, qword(rsp, n));
    this.below -= n;
    this.row();
  }

  push(reg: typeof rcx): void {
    this.a.push(reg);
    this.below += 8;
    if (reg === rcx) this.ra = this.below;
    this.row();
  }

  pop(reg: typeof rcx): void {
    this.a.pop(reg);
    if (reg === rcx) this.ra = undefined;
    this.below -= 8;
    this.row();
  }

  pushfq(): void {
    this.a.pushfq();
    this.below += 8;
    this.row();
  }

  popfq(): void {
    this.a.popfq();
    this.below -= 8;
    this.row();
  }

  /** `push rbp; mov rbp, rsp`: from here on rsp may be realigned, the rows follow rbp. */
  enterRbpFrame(): void {
    this.a.push(rbp);
    this.below += 8;
    this.rbpAt = this.below;
    this.a.mov(rbp, rsp);
    this.row();
  }

  /** `mov rsp, rbp; pop rbp`. */
  leaveRbpFrame(): void {
    this.a.mov(rsp, rbp);
    this.a.pop(rbp);
    this.rbpAt = undefined;
    this.below -= 8;
    this.row();
  }

  end(): void {
    if (this.base === undefined) this.frames?.end(this.a);
  }
}

const RSP_DWARF = 7;
const RBP_DWARF = 6;

/** A function's unwind row whose CFA is rsp + offset (the usual row of code built without a frame pointer). */
export type RspFrameRow = FrameRow & { cfa: { register: 7; offset: number } };

/** Whether `row` is rsp-based: then a stub that moves rsp can run inside the trampoline and unwind. */
export function isRspRow(row: FrameRow | undefined): row is RspFrameRow {
  return row !== undefined && 'register' in row.cfa && row.cfa.register === RSP_DWARF;
}

/** Emits one shared stub for `call`; returns its label. */
export function emitStub(a: Assembler, shape: StubShape, call: StubCall, frames?: FrameInfo): Label {
  const start = a.label(stubName(shape));
  a.bind(start);
  const st = new StubStack(a, frames);
  if (shape.kind === 'seed') {
    // The seed's stub stays exactly the seed's: it calls its entry whatever the entry is.
    if (call.kind !== 'call') throw new Error(`internal: the seed stub calls its entry (got ${call.kind})`);
    emitSeedStub(a, st, () => a.call(call.target));
    st.end();
    return start;
  }
  emitFastStub(a, st, shape, call);
  st.end();
  return start;
}

/**
 * What the fast stub does for a shape and a call (emitFastStub follows it). `resumeKnown`: a copy
 * inside a site's trampoline, which knows where the call resumes: it sets rcx again and jumps there
 * directly instead of saving rcx for a `jmp *%rcx`.
 */
function planFastStub(shape: StubShape, call: StubCall, resumeKnown = false) {
  const fx = call.kind === 'syscall' ? SYSCALL_EFFECTS : call.kind === 'c-handler' ? C_HANDLER_EFFECTS : call.effects;
  const calls = call.kind === 'call' || call.kind === 'c-handler';
  // The kernel leaves r11 = rflags itself, and the flags as they were.
  const setR11 = setsR11(shape) && call.kind !== 'syscall';
  const flags: 'none' | 'pushf' | 'lahf' = !fx.writesFlags || shape.flags === 'clobber' ? 'none' : shape.flags === 'preserve-all' ? 'pushf' : 'lahf';
  // lahf keeps the flags in r11; they go on the stack when the call may write r11.
  const lahfOnStack = flags === 'lahf' && (calls || fx.writesR11);
  // With flags clobbered by the call, r11 must still be the flags at the site: take them first.
  const r11First = setR11 && flags === 'none' && fx.writesFlags;
  const savesRcx = fx.writesRcx && !resumeKnown;
  const usesStack = calls || fx.usesStack || savesRcx || setR11 || flags === 'pushf' || lahfOnStack;
  return { fx, setR11, flags, lahfOnStack, r11First, savesRcx, usesStack, lowered: usesStack && shape.redZone === 'preserve' };
}

/**
 * Whether the stub for `shape` and `call` never touches the stack: then any trampoline can run a
 * copy of it (emitStubCopy) instead of jumping to it, one taken branch less, with no unwind rows
 * of its own (rsp never moves).
 */
export function stubIsFrameless(shape: StubShape, call: StubCall): boolean {
  return shape.kind === 'fast' && !planFastStub(shape, call, true).usesStack;
}

/**
 * A copy of the fast stub at the assembler's position, inside a trampoline (rcx = the resume
 * address, as for the stub), ending in a direct jump to `resume` with rcx set to it. One that moves
 * rsp needs the row of the function the trampoline stands in for (`base`, rsp-based), so that its
 * rows follow that frame.
 */
export function emitStubCopy(a: Assembler, shape: StubShape, call: StubCall, resume: Target, base?: { row: RspFrameRow; frames: FrameInfo }): void {
  if (shape.kind !== 'fast') throw new Error('internal: only the fast stub is copied into a trampoline');
  if (base === undefined && !stubIsFrameless(shape, call)) throw new Error('internal: a stub that moves rsp is copied only with its function\'s unwind row');
  const st = base === undefined ? new StubStack(a, undefined) : new StubStack(a, base.frames, base.row);
  emitFastStub(a, st, shape, call, resume);
  st.end();
}

/**
 * The fast stub: keeps what the call can change and the recipe asks to keep, nothing more.
 * Flags: seto+lahf keep OF SF ZF AF PF CF in ax and add $0x7f,%al + sahf give them back (popfq
 * costs ~6.6 ns a call on a Xeon; this pair almost nothing). r11 = rflags costs a pushfq (~0.8 ns
 * on the EPYC of docs/benchmarks.md): left out where decoding proved the program never reads it.
 * The red zone is stepped over with lea (no flag change) only when something touches the stack.
 */
function emitFastStub(a: Assembler, st: StubStack, shape: StubShape, call: StubCall, resume?: Target): void {
  const { fx, setR11, flags, lahfOnStack, r11First, savesRcx, lowered } = planFastStub(shape, call, resume !== undefined);
  if (lowered) st.lower(128); // lea, not sub: the flags are not saved yet
  if (flags === 'pushf' || r11First) st.pushfq();
  if (savesRcx) st.push(rcx);
  if (flags === 'lahf') {
    a.mov(r11, rax);
    a.seto(al);
    a.lahf();
    a.xchg(rax, r11); // register xchg is not locked
    if (lahfOnStack) st.push(r11);
  }
  switch (call.kind) {
    case 'call':
      a.call(call.target);
      break;
    case 'inline':
      for (const m of call.body) emitMoved(a, m);
      break;
    case 'syscall':
      // Passthrough makes the call right here: a `ret` just after a system call mispredicts on CPUs
      // whose kernel stuffs the return stack on exit (measured: +44 ns on this EPYC); `jmp *%rcx` does not.
      a.syscall();
      break;
    case 'c-handler':
      emitHandlerCall(a, st, call.handler, call.saveVectors, shape.handlerSaves ?? ALL_SCRATCH);
      break;
  }
  if (flags === 'lahf') {
    if (lahfOnStack) st.pop(r11);
    a.xchg(rax, r11);
    a.add(al, 0x7f);
    a.sahf();
    a.mov(rax, r11);
  }
  if (setR11 && flags !== 'pushf' && !r11First) {
    st.pushfq();
    st.pop(r11);
  }
  if (savesRcx) st.pop(rcx);
  if (flags === 'pushf') {
    if (setR11) a.mov(r11, qword(rsp, 0));
    st.popfq();
  } else if (r11First) {
    st.pop(r11);
  }
  if (lowered) st.raise(128);
  if (resume === undefined) {
    a.jmp(rcx);
    return;
  }
  // A direct jump: no indirect branch to predict, and rcx (as `syscall` leaves it) need not be saved.
  if (fx.writesRcx) a.lea(rcx, rip(resume));
  a.jmp(resume, { near: true });
}

/**
 * Calls `long libos_handler(long nr, long a1, ..., long a6)` from the syscall registers: saves what
 * the C ABI lets it clobber but the syscall ABI does not and the program may read (`saves`, of
 * rdi, rsi, rdx, r8, r9, r10), aligns the stack to 16 bytes (or 64 for xsave of the vector
 * state), moves the arguments into place.
 */
function emitHandlerCall(a: Assembler, st: StubStack, handler: Target, saveVectors: boolean, saves: number): void {
  st.enterRbpFrame();
  emitAlignedHandlerCall(a, handler, saveVectors, saves);
  st.leaveRbpFrame();
}

/** The seed's own `syscall_func`, instruction for instruction (its four locked xchg and popfq included). */
function emitSeedStub(a: Assembler, st: StubStack, callHook: () => void): void {
  a.xchg(qword(rsp, -8), r11);
  st.pushfq();
  a.xchg(qword(rsp, 0), r11);
  st.lower(120, true);
  st.push(r11);
  st.push(rcx);
  callHook();
  st.pop(rcx);
  st.pop(r11);
  st.raise(120, true);
  a.xchg(qword(rsp, 0), r11);
  st.popfq();
  a.xchg(qword(rsp, -8), r11);
  a.jmp(rcx);
}

/**
 * The note stub, for calls made natively at the site under `trace`: r11 = number, rax = result
 * (or the number, before a call that does not return). Saves everything with pushfq/popfq: it
 * only runs for the rare native calls.
 */
export function emitNoteStub(a: Assembler, note: Target, frames?: FrameInfo): Label {
  const start = a.label('libos_note_stub');
  a.bind(start);
  const st = new StubStack(a, frames);
  st.lower(128);
  st.pushfq();
  st.push(rcx);
  a.call(note);
  st.pop(rcx);
  a.mov(r11, qword(rsp, 0));
  st.popfq();
  st.raise(128);
  a.jmp(rcx);
  st.end();
  return start;
}
