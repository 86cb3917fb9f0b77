/**
 * Shared stubs: entered by `jmp` with rcx = the resume address and the syscall's registers as
 * `syscall` sees them; they call a hook (see hooks.ts) and return with `jmp *%rcx`, leaving every
 * register as the `syscall` instruction would (rax = result, rcx = resume address, r11 = rflags),
 * unless the recipe relaxes that.
 */
import { Assembler, type Label, type Target, rax, rcx, r11, rsp, al, qword } from '@libos/encoder';
import type { FlagsPolicy, RcxR11Policy, RedZonePolicy, StubKind } from '../model.js';

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
export function emitStub(a: Assembler, shape: StubShape, hook: Target): Label {
  const start = a.label(stubName(shape));
  a.bind(start);
  if (shape.kind === 'seed') {
    emitSeedStub(a, hook);
    return start;
  }
  const rz = shape.redZone === 'preserve';
  if (rz) a.lea(rsp, qword(rsp, -128)); // lea, not sub: the flags are not saved yet
  switch (shape.flags) {
    case 'preserve':
      // seto+lahf keep OF SF ZF AF PF CF in ax; add $0x7f,%al + sahf give them back. popfq
      // costs ~6.6 ns a call here; this pair costs almost nothing (stub-costs.md: 1.5 ns a call).
      a.push(rcx);
      a.mov(r11, rax);
      a.seto(al);
      a.lahf();
      a.xchg(rax, r11); // register xchg is not locked
      a.push(r11);
      a.call(hook);
      a.pop(r11);
      a.xchg(rax, r11);
      a.add(al, 0x7f);
      a.sahf();
      a.mov(rax, r11);
      if (shape.rcxR11 === 'syscall') {
        a.pushfq();
        a.pop(r11);
      }
      a.pop(rcx);
      break;
    case 'preserve-all':
      a.pushfq();
      a.push(rcx);
      a.call(hook);
      a.pop(rcx);
      if (shape.rcxR11 === 'syscall') a.mov(r11, qword(rsp, 0));
      a.popfq();
      break;
    case 'clobber':
      a.push(rcx);
      a.call(hook);
      if (shape.rcxR11 === 'syscall') {
        a.pushfq();
        a.pop(r11);
      }
      a.pop(rcx);
      break;
  }
  if (rz) a.lea(rsp, qword(rsp, 128));
  a.jmp(rcx);
  return start;
}

/** The seed's own `syscall_func`, instruction for instruction (its four locked xchg and popfq included). */
function emitSeedStub(a: Assembler, hook: Target): void {
  a.xchg(qword(rsp, -8), r11);
  a.pushfq();
  a.xchg(qword(rsp, 0), r11);
  a.sub(rsp, 120);
  a.push(r11);
  a.push(rcx);
  a.call(hook);
  a.pop(rcx);
  a.pop(r11);
  a.add(rsp, 120);
  a.xchg(qword(rsp, 0), r11);
  a.popfq();
  a.xchg(qword(rsp, -8), r11);
  a.jmp(rcx);
}

/**
 * The note stub, for calls made natively at the site under `trace`: r11 = number, rax = result
 * (or the number, before a call that does not return). Saves everything with pushfq/popfq: it
 * only runs for the rare native calls.
 */
export function emitNoteStub(a: Assembler, note: Target): Label {
  const start = a.label('libos_note_stub');
  a.bind(start);
  a.lea(rsp, qword(rsp, -128));
  a.pushfq();
  a.push(rcx);
  a.call(note);
  a.pop(rcx);
  a.mov(r11, qword(rsp, 0));
  a.popfq();
  a.lea(rsp, qword(rsp, 128));
  a.jmp(rcx);
  return start;
}
