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

/** Emits one shared stub that calls `hook`; returns its label. */
export function emitStub(a: Assembler, shape: StubShape, hook: Target | 'inline-syscall', frames?: FrameInfo): Label {
  const start = a.label(stubName(shape));
  // Passthrough makes the call right here: a `ret` just after a system call mispredicts on CPUs
  // whose kernel stuffs the return stack on exit (measured: +44 ns on this EPYC); `jmp *%rcx` does not.
  const callHook = () => (hook === 'inline-syscall' ? a.syscall() : a.call(hook));
  a.bind(start);
  // Unwind rows: `below` is how far rsp is under the site's rsp; `ra` where rcx was saved.
  let below = 0;
  let ra: number | undefined;
  frames?.begin(a, stubRow(0));
  const moved = (delta: number) => {
    below += delta;
    frames?.set(a, stubRow(below, ra));
  };
  const savedRcx = () => {
    ra = below;
    frames?.set(a, stubRow(below, ra));
  };
  const restoredRcx = () => {
    ra = undefined;
    frames?.set(a, stubRow(below, ra));
  };
  if (shape.kind === 'seed') {
    emitSeedStub(a, callHook, moved, savedRcx, restoredRcx);
    frames?.end(a);
    return start;
  }
  const rz = shape.redZone === 'preserve';
  if (rz) {
    a.lea(rsp, qword(rsp, -128)); // lea, not sub: the flags are not saved yet
    moved(128);
  }
  switch (shape.flags) {
    case 'preserve':
      // seto+lahf keep OF SF ZF AF PF CF in ax; add $0x7f,%al + sahf give them back. popfq
      // costs ~6.6 ns a call here; this pair costs almost nothing (stub-costs.md: 1.5 ns a call).
      a.push(rcx);
      moved(8);
      savedRcx();
      a.mov(r11, rax);
      a.seto(al);
      a.lahf();
      a.xchg(rax, r11); // register xchg is not locked
      a.push(r11);
      moved(8);
      callHook();
      a.pop(r11);
      moved(-8);
      a.xchg(rax, r11);
      a.add(al, 0x7f);
      a.sahf();
      a.mov(rax, r11);
      if (shape.rcxR11 === 'syscall') {
        a.pushfq();
        moved(8);
        a.pop(r11);
        moved(-8);
      }
      a.pop(rcx);
      moved(-8);
      restoredRcx();
      break;
    case 'preserve-all':
      a.pushfq();
      moved(8);
      a.push(rcx);
      moved(8);
      savedRcx();
      callHook();
      a.pop(rcx);
      moved(-8);
      restoredRcx();
      if (shape.rcxR11 === 'syscall') a.mov(r11, qword(rsp, 0));
      a.popfq();
      moved(-8);
      break;
    case 'clobber':
      // r11 must still be the flags at the site, as `syscall` leaves it: pushfq is cheap (popfq is
      // what costs), so take them on the way in and pop them into r11 on the way out.
      if (shape.rcxR11 === 'syscall') {
        a.pushfq();
        moved(8);
      }
      a.push(rcx);
      moved(8);
      savedRcx();
      callHook();
      a.pop(rcx);
      moved(-8);
      restoredRcx();
      if (shape.rcxR11 === 'syscall') {
        a.pop(r11);
        moved(-8);
      }
      break;
  }
  if (rz) {
    a.lea(rsp, qword(rsp, 128));
    moved(-128);
  }
  a.jmp(rcx);
  frames?.end(a);
  return start;
}

/** The seed's own `syscall_func`, instruction for instruction (its four locked xchg and popfq included). */
function emitSeedStub(a: Assembler, callHook: () => void, moved: (d: number) => void, savedRcx: () => void, restoredRcx: () => void): void {
  a.xchg(qword(rsp, -8), r11);
  a.pushfq();
  moved(8);
  a.xchg(qword(rsp, 0), r11);
  a.sub(rsp, 120);
  moved(120);
  a.push(r11);
  moved(8);
  a.push(rcx);
  moved(8);
  savedRcx();
  callHook();
  a.pop(rcx);
  moved(-8);
  restoredRcx();
  a.pop(r11);
  moved(-8);
  a.add(rsp, 120);
  moved(-120);
  a.xchg(qword(rsp, 0), r11);
  a.popfq();
  moved(-8);
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
  frames?.begin(a, stubRow(0));
  a.lea(rsp, qword(rsp, -128));
  frames?.set(a, stubRow(128));
  a.pushfq();
  frames?.set(a, stubRow(136));
  a.push(rcx);
  frames?.set(a, stubRow(144, 144));
  a.call(note);
  a.pop(rcx);
  frames?.set(a, stubRow(136));
  a.mov(r11, qword(rsp, 0));
  a.popfq();
  frames?.set(a, stubRow(128));
  a.lea(rsp, qword(rsp, 128));
  frames?.set(a, stubRow(0));
  a.jmp(rcx);
  frames?.end(a);
  return start;
}
