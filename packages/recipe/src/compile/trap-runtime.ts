/**
 * The trap variant's runtime: a start stub that installs a SIGILL (ud2) or SIGTRAP (int3)
 * handler with raw system calls before the program's own entry point runs, and the handler,
 * which finds the faulting site in a table, makes the call through the hook, and resumes after
 * the site. Calls that change the signal state the kernel restores on sigreturn (rt_sigprocmask,
 * rt_sigsuspend, sigaltstack, rt_sigreturn) or that cannot run inside a handler's frame (vfork,
 * clone with a new stack or CLONE_VM, clone3) are resumed at a native `syscall` of the site's own
 * instead, outside the handler.
 *
 * The documented limit: a program that installs its own handler for that signal replaces ours.
 */
import {
  Assembler, type Label, type Target,
  rax, rbx, rcx, rdx, rsi, rdi, rsp, r8, r9, r10, r11, r12, eax, ecx, edi, edx, r10d, r11d,
  qword, dword, mem, rip,
} from '@libos/encoder';
import { NO_RESULT } from './hooks.js';
import { CLONE_VM, NR_CLONE, NR_CLONE3, NR_RT_SIGRETURN, NR_VFORK } from './site-code.js';

const NR_RT_SIGSUSPEND = 130;
const NR_SIGALTSTACK = 131;

export interface TrapSite {
  siteVa: bigint;
  resumeVa: bigint;
  /** The site's native stub: `syscall; jmp resume`. */
  native: Label;
  /** Native stubs for vfork, clone and clone3 that note the call after it, in each process (trace). */
  forkLike?: { vfork: Label; clone: Label; clone3: Label };
}

const SIGILL = 4;
const SIGTRAP = 5;
const SA_SIGINFO = 0x4;
const SA_RESTORER = 0x04000000;
// A signal handler of the program may itself make trapped calls while ours runs: let SIGILL nest.
const SA_NODEFER = 0x40000000;
const UC_GREGS = 40; // offsetof(ucontext_t, uc_mcontext.gregs)
const REG = { R8: 0, R9: 1, R10: 2, R11: 3, RDI: 8, RSI: 9, RDX: 12, RAX: 13, RCX: 14, RIP: 16, EFL: 17 } as const;
const greg = (i: number) => qword(rbx, UC_GREGS + 8 * i);
/** Table entry: int32 site, resume, native, native vfork, native clone, native clone3 (table-relative). */
const ENTRY = 24;

/**
 * Calls handled natively when trapped, after the handler returns: their effect must not be undone
 * by sigreturn (rt_sigsuspend, sigaltstack) or they cannot run inside a handler's frame.
 * rt_sigprocmask is emulated on the ucontext's mask instead, and rt_sigaction made with a copy of
 * its sigaction: both so that the program can never block the runtime's own signal (a trap while
 * it is blocked would kill the process: glibc's pthread_create blocks every signal around clone3).
 */
const TRAP_NATIVE = [NR_RT_SIGRETURN, NR_RT_SIGSUSPEND, NR_SIGALTSTACK, NR_VFORK, NR_CLONE3] as const;
const NR_RT_SIGACTION = 13;
const NR_RT_SIGPROCMASK = 14;
const UC_SIGMASK = 296; // offsetof(struct ucontext, uc_sigmask) in the kernel's layout
const EINVAL = 22;

/**
 * Emits the runtime; returns the start stub's label (the new entry point), which jumps to
 * `originalEntry` once the handler is installed.
 */
/** Bytes of writable state the runtime needs (the handler it replaced, as rt_sigaction returned it). */
export const TRAP_STATE_SIZE = 32;

export function emitTrapRuntime(a: Assembler, sites: TrapSite[], hook: Target, instruction: 'ud2' | 'int3', originalEntry: bigint, stateVa: bigint, note?: Target): Label {
  const start = a.label('libos_trap_start');
  const handler = a.label('libos_trap_handler');
  const restorer = a.label('libos_trap_restorer');
  const table = a.label('libos_trap_table');
  const signal = instruction === 'ud2' ? SIGILL : SIGTRAP;

  // Start stub: as an entry point, rsp points at argc and rdx holds ld.so's finaliser; as a
  // library initializer, rdi rsi rdx are argc, argv, envp. Keep all of them as they are.
  a.bind(start);
  a.push(rdi);
  a.push(rsi);
  a.push(rdx);
  a.lea(rsp, qword(rsp, -32)); // struct kernel_sigaction { handler, flags, restorer, mask }
  a.lea(rax, rip(handler));
  a.mov(qword(rsp, 0), rax);
  a.mov(qword(rsp, 8), SA_SIGINFO | SA_RESTORER | SA_NODEFER);
  a.lea(rax, rip(restorer));
  a.mov(qword(rsp, 16), rax);
  a.mov(qword(rsp, 24), 0);
  a.mov(eax, 13); // rt_sigaction, keeping the handler it replaces (another rewritten object's)
  a.mov(edi, signal);
  a.mov(rsi, rsp);
  a.lea(rdx, rip(stateVa));
  a.mov(r10d, 8);
  a.syscall();
  a.lea(rsp, qword(rsp, 32));
  a.pop(rdx);
  a.pop(rsi);
  a.pop(rdi);
  a.jmp(originalEntry, { near: true });

  a.bind(restorer);
  a.mov(eax, 15); // rt_sigreturn
  a.syscall();
  a.ud2();

  // Handler: rdi = signal, rsi = siginfo, rdx = ucontext. Everything it changes in registers is
  // undone by sigreturn; what it changes in the ucontext is what the program sees.
  const found = a.label();
  const loop = a.label();
  const notOurs = a.label();
  const viaHook = a.label();
  const toNative = a.label();
  a.bind(handler);
  a.push(rbx);
  a.push(r12);
  a.lea(rsp, qword(rsp, -8)); // 16-byte alignment for the hook's own calls
  a.mov(rbx, rdx);
  a.mov(r11, greg(REG.RIP));
  if (instruction === 'int3') a.lea(r11, mem(r11, -1)); // int3 reports the address after it
  a.lea(r8, rip(table));
  a.mov(r9, r11);
  a.sub(r9, r8); // the site relative to the table
  a.mov(ecx, sites.length);
  a.mov(r12, r8);
  a.bind(loop);
  a.test(ecx, ecx);
  a.je(notOurs);
  a.movsxd(r10, dword(r12, 0));
  a.cmp(r10, r9);
  a.je(found);
  a.lea(r12, mem(r12, ENTRY));
  a.sub(ecx, 1);
  a.jmp(loop);

  a.bind(found);
  // r12 = entry { int32 site, int32 resume, int32 native } relative to the table.
  a.mov(rax, greg(REG.RAX));
  const notMask = a.label();
  const notAction = a.label();
  const resume = a.label();
  const ourBit = 1n << BigInt(signal - 1);
  // rt_sigprocmask(how, set, oldset, 8) on the mask sigreturn will restore, never blocking ours.
  {
    const haveNew = a.label();
    const apply = a.label();
    const unblock = a.label();
    const setmask = a.label();
    const einval = a.label();
    const store = a.label();
    a.cmp(rax, NR_RT_SIGPROCMASK);
    a.jne(notMask);
    a.cmp(greg(REG.R10), 8);
    a.jne(einval);
    a.mov(rcx, qword(rbx, UC_SIGMASK)); // the mask the program had at the trap
    a.mov(rdx, greg(REG.RDX));
    a.test(rdx, rdx);
    a.je(haveNew);
    a.mov(qword(rdx, 0), rcx); // *oldset
    a.bind(haveNew);
    a.mov(rsi, greg(REG.RSI));
    a.test(rsi, rsi);
    a.je(store);
    a.mov(rsi, qword(rsi, 0));
    a.mov(rdi, greg(REG.RDI));
    a.bind(apply);
    a.cmp(rdi, 0); // SIG_BLOCK
    a.jne(unblock);
    a.or(rcx, rsi);
    a.jmp(store);
    a.bind(unblock);
    a.cmp(rdi, 1); // SIG_UNBLOCK
    a.jne(setmask);
    a.not(rsi);
    a.and(rcx, rsi);
    a.jmp(store);
    a.bind(setmask);
    a.cmp(rdi, 2); // SIG_SETMASK
    a.jne(einval);
    a.mov(rcx, rsi);
    a.bind(store);
    a.mov(rax, ~ourBit);
    a.and(rcx, rax);
    a.mov(qword(rbx, UC_SIGMASK), rcx);
    a.mov(greg(REG.RAX), 0);
    const noted = a.label();
    a.jmp(noted);
    a.bind(einval);
    a.mov(greg(REG.RAX), -EINVAL);
    a.bind(noted);
    if (note !== undefined) {
      // Emulated without the hook: traced here, like every other call.
      a.mov(rdi, greg(REG.RDI));
      a.mov(rsi, greg(REG.RSI));
      a.mov(rdx, greg(REG.RDX));
      a.mov(r11d, NR_RT_SIGPROCMASK);
      a.mov(rax, greg(REG.RAX));
      a.call(note);
    }
    a.jmp(resume);
  }
  a.bind(notMask);
  // rt_sigaction: the handler's mask may not hold our signal either; the call is made with a copy.
  a.cmp(rax, NR_RT_SIGACTION);
  a.jne(notAction);
  a.mov(rsi, greg(REG.RSI));
  a.test(rsi, rsi);
  a.je(viaHook);
  a.lea(rsp, qword(rsp, -32));
  for (let i = 0; i < 32; i += 8) {
    a.mov(rcx, qword(rsi, i));
    a.mov(qword(rsp, i), rcx);
  }
  a.mov(rcx, ~ourBit);
  a.and(qword(rsp, 24), rcx);
  a.mov(rdi, greg(REG.RDI));
  a.mov(rsi, rsp);
  a.mov(rdx, greg(REG.RDX));
  a.mov(r10, greg(REG.R10));
  a.mov(rax, greg(REG.RAX));
  a.call(hook);
  a.lea(rsp, qword(rsp, 32));
  a.mov(greg(REG.RAX), rax);
  a.jmp(resume);
  a.bind(notAction);
  for (const nr of TRAP_NATIVE) {
    a.cmp(rax, nr);
    a.je(toNative);
  }
  a.cmp(rax, NR_CLONE);
  a.jne(viaHook);
  a.cmp(greg(REG.RSI), 0);
  a.jne(toNative);
  a.test(greg(REG.RDI), CLONE_VM);
  a.jne(toNative);
  a.bind(viaHook);
  a.mov(rdi, greg(REG.RDI));
  a.mov(rsi, greg(REG.RSI));
  a.mov(rdx, greg(REG.RDX));
  a.mov(r10, greg(REG.R10));
  a.mov(r8, greg(REG.R8));
  a.mov(r9, greg(REG.R9));
  a.call(hook);
  a.mov(greg(REG.RAX), rax);
  a.bind(resume);
  a.lea(r8, rip(table));
  a.movsxd(rcx, dword(r12, 4));
  a.add(rcx, r8);
  a.mov(greg(REG.RIP), rcx);
  a.mov(greg(REG.RCX), rcx); // as `syscall` leaves them: rcx = resume, r11 = rflags
  a.mov(r11, greg(REG.EFL));
  a.mov(greg(REG.R11), r11);
  const done = a.label();
  a.bind(done);
  a.lea(rsp, qword(rsp, 8));
  a.pop(r12);
  a.pop(rbx);
  a.ret();

  a.bind(toNative);
  if (note !== undefined) {
    // vfork, clone and clone3 are noted after the call, in each process, by their own stubs.
    const forkLike = [[NR_VFORK, 12], [NR_CLONE, 16], [NR_CLONE3, 20]] as const;
    const generic = a.label();
    for (const [nr, field] of forkLike) {
      const next = a.label();
      a.cmp(rax, nr);
      a.jne(next);
      a.lea(r8, rip(table));
      a.movsxd(rcx, dword(r12, field));
      a.add(rcx, r8);
      a.mov(greg(REG.RIP), rcx);
      a.jmp(done);
      a.bind(next);
    }
    a.bind(generic);
    // Traced before the call (its result happens outside the handler): one line, `= ?`.
    a.mov(rdi, greg(REG.RDI));
    a.mov(rsi, greg(REG.RSI));
    a.mov(rdx, greg(REG.RDX));
    a.mov(r11, greg(REG.RAX));
    a.mov(rax, NO_RESULT);
    a.call(note);
  }
  a.lea(r8, rip(table));
  a.movsxd(rcx, dword(r12, 8));
  a.add(rcx, r8);
  a.mov(greg(REG.RIP), rcx);
  a.jmp(done);

  // Not a site of ours: hand it to the handler ours replaced (another rewritten object in the
  // process installs its own runtime too), with the signal's own arguments; else put the default
  // action back and return, so the instruction faults again and the program dies as without us.
  const reset = a.label();
  a.bind(notOurs);
  a.mov(rax, qword(rip(stateVa)));
  a.cmp(rax, 1); // SIG_DFL 0, SIG_IGN 1
  a.jbe(reset);
  a.lea(rsp, qword(rsp, 8));
  a.pop(r12);
  a.pop(rbx);
  a.jmp(rax);
  a.bind(reset);
  a.lea(rsp, qword(rsp, -32));
  a.mov(qword(rsp, 0), 0); // SIG_DFL
  a.mov(qword(rsp, 8), 0);
  a.mov(qword(rsp, 16), 0);
  a.mov(qword(rsp, 24), 0);
  a.mov(eax, 13);
  a.mov(edi, signal);
  a.mov(rsi, rsp);
  a.xor(edx, edx);
  a.mov(r10d, 8);
  a.syscall();
  a.lea(rsp, qword(rsp, 32));
  a.jmp(done);

  // The table, each field relative to the table's own address (position-independent).
  a.align(4);
  a.bind(table);
  // A rel32 field holds target + addend - its own address: the addend makes it table-relative.
  sites.forEach((s, k) => {
    const fields = [s.siteVa, s.resumeVa, s.native, s.forkLike?.vfork ?? s.native, s.forkLike?.clone ?? s.native, s.forkLike?.clone3 ?? s.native];
    fields.forEach((f, j) => a.rel32(f, ENTRY * k + 4 * j));
  });
  return start;
}
