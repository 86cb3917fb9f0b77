/*
 * annotated-loop.c: getppid through one annotated site (glibc RFC's SYSCALL_INST: `syscall` and ten
 * NOPs, listed in .libos.instructions.syscall.pcrel), in a tight loop. Unpatched it is the native
 * baseline; libos-patch rewrites the site with each glibc-rfc variant (and trap-only).
 *
 * Built with -DBENCH_NR_AT_SITE, the number is loaded by `mov $110,%eax` right before the window (as
 * glibc's syscall macros usually leave it), so the engine knows it statically; otherwise gcc hoists
 * the constant out of the loop and the site sees only `mov %rsi,%rax`, so the site's trampoline
 * compares the number at run time against the calls that must be made natively (rt_sigreturn,
 * clone, vfork, clone3) before it enters the stub.
 *
 * bench_hook is the hook-only entry (`symbol` entry, hook convention: rax = nr, result in rax, may
 * clobber rcx, r11 and the flags): it answers from a cached value without entering the kernel,
 * like handler_cached in shared/reference/stub-designs.S; libos-patch copies it into the stub.
 * bench_hook_opaque gives the same answer through a frame and a branch, so it is called. Neither
 * holds a `syscall`, so recipes that decode every function leave them alone.
 */
#include "bench-loop.h"
#include <unistd.h>
#include "syscall-inst.h"

__asm__(
    "    .text\n"
    "    .globl bench_hook\n"
    "    .type bench_hook, @function\n"
    "    .p2align 4\n"
    "bench_hook:\n"
    "    movq bench_cached(%rip), %rax\n"
    "    ret\n"
    "    .size bench_hook, . - bench_hook\n"
    /* The same answer through a frame and a branch: the stub cannot see through it, so it calls it
     * and saves everything the hook convention lets a hook change (the generic path). */
    "    .globl bench_hook_opaque\n"
    "    .type bench_hook_opaque, @function\n"
    "    .p2align 4\n"
    "bench_hook_opaque:\n"
    "    push %rbx\n"
    "    movq bench_cached(%rip), %rbx\n"
    "    test %rbx, %rbx\n"
    "    jz 1f\n"
    "    mov %rbx, %rax\n"
    "1:  pop %rbx\n"
    "    ret\n"
    "    .size bench_hook_opaque, . - bench_hook_opaque\n");

static __attribute__((noinline)) long loop(long n)
{
    long r = 0;
    for (long i = 0; i < n; i++) {
#ifdef BENCH_NR_AT_SITE
        __asm__ volatile("mov $110, %%eax\n\t" SYSCALL_INST : "=a"(r) : : "rcx", "r11", "memory");
#else
        r = libos_sc0(110);
#endif
    }
    return r;
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    bench_cached = getppid();               /* glibc's wrapper, in libc.so.6: not rewritten */
    loop(n / 20 + 1000);                    /* warm-up: trampoline pages, caches, predictors */
    struct bench_time t0 = bench_now();
    long r = loop(n);
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
