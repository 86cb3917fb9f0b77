/*
 * call-ret-loop.c: a control, not an interception method. getppid made natively, but from a
 * function reached by `call` and left by `ret` (`call f; f: syscall; ret`), which is how a stub
 * reaches a passthrough entry. On CPUs where the kernel refills or clears the return stack buffer
 * on entry or exit (RSB filling, AMD SRSO "Safe RET"), the first `ret` after a system call is
 * mispredicted: this row shows that cost apart from any stub.
 */
#include "bench-loop.h"
#include <unistd.h>

__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "syscall_ret:\n"
    "    syscall\n"
    "    ret\n");

static __attribute__((noinline)) long loop(long n)
{
    long r = 0;
    for (long i = 0; i < n; i++)
        __asm__ volatile("mov $110, %%eax\n\tcall syscall_ret" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    loop(n / 20 + 1000);
    struct bench_time t0 = bench_now();
    long r = loop(n);
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
