/*
 * libos-handler.h: what a C system call handler for libos-patch needs.
 *
 * A rewritten program jumps to a stub instead of trapping; the stub calls
 *
 *     long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
 *
 * and the value it returns becomes the system call's result (rax), exactly as if the kernel had
 * returned it: a failure is a negative errno (-ENOENT), not -1 with errno set.
 *
 * Build it the way `libos-patch` does (see docs/handlers.md):
 *
 *     cc -O2 -fPIC -ffreestanding -fno-stack-protector -fno-builtin -mgeneral-regs-only \
 *        -nostdlib -c handler.c -I <this directory>
 *
 * Why these flags:
 *  - -mgeneral-regs-only: the stub saves the general registers a C function may clobber, not the
 *    vector (xmm/ymm/zmm), mask or x87 registers, and programs rely on those surviving a system call
 *    (glibc's early thread setup keeps a live value in xmm0 across one). The linker decodes the
 *    handler and reports any instruction that touches vector state.
 *  - -fPIC: the handler is placed next to the program wherever the rewriter finds room, and the
 *    program itself may be a PIE or a shared library; only PC-relative references survive that.
 *    A table of pointers (`static const char *t[] = {"a", "b"}`) needs absolute addresses and is
 *    only accepted when the output is a non-PIE executable.
 *  - -ffreestanding -nostdlib -fno-builtin: there is no libc inside the handler. Every symbol it
 *    references must be defined in the same object (gcc may still emit calls to memcpy, memset,
 *    memmove or memcmp for struct copies and loops: define them yourself if it does).
 *  - -fno-stack-protector: the canary lives in thread-local storage (%fs:0x28), which belongs to
 *    the program, not to the handler; thread-local variables are refused for the same reason.
 *
 * Where it runs: on the program's own stack, in whichever thread made the system call, with
 * signals still deliverable, and a signal handler may make system calls of its own. So the handler
 * must be reentrant: keep per-call state on the stack, update shared counters with atomics
 * (__atomic_fetch_add) if exact counts across threads matter, and never take a lock that a signal
 * handler in the same thread could be waiting for. The stack is the program's: keep frames small.
 *
 * To pass a call on to the kernel use libos_syscall6() (or 0..5 below): it issues a raw `syscall`.
 * The handler is linked in after the sites to patch are found, so that `syscall` is never
 * rewritten and cannot loop back into the handler. Calls that change the stack or registers
 * wholesale (rt_sigreturn, clone with a new stack, vfork) are meant to be forwarded at the site
 * and not reach the handler; forward anything you do not handle unchanged.
 *
 * System call numbers: include <sys/syscall.h>, which is only macros and works under
 * -ffreestanding -nostdlib (SYS_getpid, __NR_openat, ...). A few common ones are defined below for
 * handlers that would rather not depend on the system headers.
 */
#ifndef LIBOS_HANDLER_H
#define LIBOS_HANDLER_H

#ifndef __x86_64__
# error "libos-handler.h is for x86-64 only"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** The handler every handler object must define (global, in .text). */
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/*
 * A raw system call. The kernel takes the number in rax and the arguments in rdi, rsi, rdx, r10,
 * r8, r9 (r10, not rcx: `syscall` overwrites rcx with the return address and r11 with rflags),
 * and returns in rax. The "memory" clobber keeps the compiler from caching memory across the
 * call (read() writes a buffer, for one).
 */
static inline long libos_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long libos_syscall0(long nr)
{
    return libos_syscall6(nr, 0, 0, 0, 0, 0, 0);
}

static inline long libos_syscall1(long nr, long a1)
{
    return libos_syscall6(nr, a1, 0, 0, 0, 0, 0);
}

static inline long libos_syscall2(long nr, long a1, long a2)
{
    return libos_syscall6(nr, a1, a2, 0, 0, 0, 0);
}

static inline long libos_syscall3(long nr, long a1, long a2, long a3)
{
    return libos_syscall6(nr, a1, a2, a3, 0, 0, 0);
}

static inline long libos_syscall4(long nr, long a1, long a2, long a3, long a4)
{
    return libos_syscall6(nr, a1, a2, a3, a4, 0, 0);
}

static inline long libos_syscall5(long nr, long a1, long a2, long a3, long a4, long a5)
{
    return libos_syscall6(nr, a1, a2, a3, a4, a5, 0);
}

/* x86-64 numbers of common calls (the same values as <sys/syscall.h>'s SYS_*). */
#define LIBOS_NR_read 0
#define LIBOS_NR_write 1
#define LIBOS_NR_open 2
#define LIBOS_NR_close 3
#define LIBOS_NR_stat 4
#define LIBOS_NR_fstat 5
#define LIBOS_NR_lseek 8
#define LIBOS_NR_mmap 9
#define LIBOS_NR_mprotect 10
#define LIBOS_NR_munmap 11
#define LIBOS_NR_brk 12
#define LIBOS_NR_rt_sigaction 13
#define LIBOS_NR_rt_sigprocmask 14
#define LIBOS_NR_rt_sigreturn 15
#define LIBOS_NR_ioctl 16
#define LIBOS_NR_pread64 17
#define LIBOS_NR_pwrite64 18
#define LIBOS_NR_readv 19
#define LIBOS_NR_writev 20
#define LIBOS_NR_access 21
#define LIBOS_NR_pipe 22
#define LIBOS_NR_sched_yield 24
#define LIBOS_NR_madvise 28
#define LIBOS_NR_dup 32
#define LIBOS_NR_dup2 33
#define LIBOS_NR_nanosleep 35
#define LIBOS_NR_getpid 39
#define LIBOS_NR_socket 41
#define LIBOS_NR_connect 42
#define LIBOS_NR_clone 56
#define LIBOS_NR_fork 57
#define LIBOS_NR_vfork 58
#define LIBOS_NR_execve 59
#define LIBOS_NR_exit 60
#define LIBOS_NR_wait4 61
#define LIBOS_NR_kill 62
#define LIBOS_NR_uname 63
#define LIBOS_NR_fcntl 72
#define LIBOS_NR_getcwd 79
#define LIBOS_NR_getuid 102
#define LIBOS_NR_getgid 104
#define LIBOS_NR_geteuid 107
#define LIBOS_NR_getegid 108
#define LIBOS_NR_getppid 110
#define LIBOS_NR_prctl 157
#define LIBOS_NR_arch_prctl 158
#define LIBOS_NR_gettid 186
#define LIBOS_NR_futex 202
#define LIBOS_NR_getdents64 217
#define LIBOS_NR_set_tid_address 218
#define LIBOS_NR_clock_gettime 228
#define LIBOS_NR_exit_group 231
#define LIBOS_NR_tgkill 234
#define LIBOS_NR_openat 257
#define LIBOS_NR_newfstatat 262
#define LIBOS_NR_set_robust_list 273
#define LIBOS_NR_pipe2 293
#define LIBOS_NR_prlimit64 302
#define LIBOS_NR_getrandom 318
#define LIBOS_NR_rseq 334
#define LIBOS_NR_clone3 435

#ifdef __cplusplus
}
#endif

#endif /* LIBOS_HANDLER_H */
