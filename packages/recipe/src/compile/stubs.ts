/**
 * Shared stubs: entered by `jmp` with rcx = the resume address and the syscall's registers as
 * `syscall` sees them; they call a hook (see hooks.ts) and return with `jmp *%rcx`, leaving every
 * register as the `syscall` instruction would (rax = result, rcx = resume address, r11 = rflags),
 * unless the recipe relaxes that.
 */
import { Assembler, type Label, type Target, rax, rcx, r11, rsp, al, qword } from '@libos/encoder';
import type { FlagsPolicy, RcxR11Policy, RedZonePolicy, StubKind } from '../model.js';
import { stubRow, type FrameInfo } from './debug-frame.js';

/** What a stub keeps; one stub is emitted per distinct shape a plan uses. */
export interface StubShape {
  kind: StubKind;
  /** 'clobber-if-dead' is decided per site before a shape is chosen. */
  flags: Exclude<FlagsPolicy, 'clobber-if-dead'>;
  redZone: RedZonePolicy;
  rcxR11: RcxR11Policy;
}

export function stubName(shape: StubShape): string {
  if (shape.kind === 'seed') return 'libos_stub_seed';
  const flags = shape.flags === 'preserve' ? 'lahf' : shape.flags === 'preserve-all' ? 'pushf' : 'noflags';
  const rz = shape.redZone === 'preserve' ? 'rz' : 'norz';
  const r11 = shape.rcxR11 === 'syscall' ? '' : '_nor11';
  return `libos_stub_${flags}_${rz}${r11}`;
}

/**
 * Emits instructions that move rsp and keeps the unwind row in step: `below` is how far rsp is
 * under the site's rsp (the CFA), `ra` where the resume address (rcx) was saved, if it was.
 */
class StubStack {
  private below = 0;
  private ra: number | undefined;

  constructor(private readonly a: Assembler, private readonly frames: FrameInfo | undefined) {
    frames?.begin(a, stubRow(0));
  }

  private row(): void {
    this.frames?.set(this.a, stubRow(this.below, this.ra));
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

  end(): void {
    this.frames?.end(this.a);
  }
}

/** Emits one shared stub that calls `hook`; returns its label. */
export function emitStub(a: Assembler, shape: StubShape, hook: Target | 'inline-syscall', frames?: FrameInfo): Label {
  const start = a.label(stubName(shape));
  // Passthrough makes the call right here: a `ret` just after a system call mispredicts on CPUs
  // whose kernel stuffs the return stack on exit (measured: +44 ns on this EPYC); `jmp *%rcx` does not.
  const callHook = () => (hook === 'inline-syscall' ? a.syscall() : a.call(hook));
  a.bind(start);
  const st = new StubStack(a, frames);
  if (shape.kind === 'seed') {
    emitSeedStub(a, st, callHook);
    st.end();
    return start;
  }
  const rz = shape.redZone === 'preserve';
  if (rz) st.lower(128); // lea, not sub: the flags are not saved yet
  const r11IsFlags = shape.rcxR11 === 'syscall';
  switch (shape.flags) {
    case 'preserve':
      // seto+lahf keep OF SF ZF AF PF CF in ax; add $0x7f,%al + sahf give them back. popfq
      // costs ~6.6 ns a call on a Xeon; this pair costs almost nothing (stub-costs.md: 1.5 ns a call).
      st.push(rcx);
      a.mov(r11, rax);
      a.seto(al);
      a.lahf();
      a.xchg(rax, r11); // register xchg is not locked
      st.push(r11);
      callHook();
      st.pop(r11);
      a.xchg(rax, r11);
      a.add(al, 0x7f);
      a.sahf();
      a.mov(rax, r11);
      if (r11IsFlags) {
        st.pushfq();
        st.pop(r11);
      }
      st.pop(rcx);
      break;
    case 'preserve-all':
      st.pushfq();
      st.push(rcx);
      callHook();
      st.pop(rcx);
      if (r11IsFlags) a.mov(r11, qword(rsp, 0));
      st.popfq();
      break;
    case 'clobber':
      // r11 must still be the flags at the site, as `syscall` leaves it: pushfq is cheap (popfq is
      // what costs), so take them on the way in and pop them into r11 on the way out.
      if (r11IsFlags) st.pushfq();
      st.push(rcx);
      callHook();
      st.pop(rcx);
      if (r11IsFlags) st.pop(r11);
      break;
  }
  if (rz) st.raise(128);
  a.jmp(rcx);
  st.end();
  return start;
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
