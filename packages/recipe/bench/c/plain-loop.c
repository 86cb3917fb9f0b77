/*
 * plain-loop.c: getppid as a plain `mov $110,%eax; syscall` (2-byte syscall, no padding, no
 * annotation), in a tight loop: the shape of code in a stock libc. libos-patch rewrites it with the
 * `unannotated` recipe (neighbouring instructions displaced into the site's trampoline).
 * bench_hook: as in annotated-loop.c.
 */
#include "bench-loop.h"
#include <unistd.h>

__asm__(
    "    .text\n"
    "    .globl bench_hook\n"
    "    .type bench_hook, @function\n"
    "    .p2align 4\n"
    "bench_hook:\n"
    "    movq bench_cached(%rip), %rax\n"
    "    ret\n"
    "    .size bench_hook, . - bench_hook\n");

static __attribute__((noinline)) long loop(long n)
{
    long r = 0;
    for (long i = 0; i < n; i++)
        __asm__ volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    bench_cached = getppid();
    loop(n / 20 + 1000);
    struct bench_time t0 = bench_now();
    long r = loop(n);
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
