/*
 * int3.c: the site is `mov $110,%eax; int3` (what a rewriter that can only fit one byte leaves);
 * the SIGTRAP handler answers getppid from a cached value by writing rax in the signal frame. After
 * int3 the saved rip already points past it, so the handler need not move it.
 */
#include "bench-loop.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static void on_sigtrap(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    ucontext_t *uc = context;
    uc->uc_mcontext.gregs[REG_RAX] = uc->uc_mcontext.gregs[REG_RAX] == 110 ? bench_cached : -ENOSYS;
}

static __attribute__((noinline)) long loop(long n)
{
    long r = 0;
    for (long i = 0; i < n; i++)
        __asm__ volatile("mov $110, %%eax\n\tint3" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    bench_cached = getppid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigtrap;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTRAP, &sa, NULL);
    loop(n / 20 + 100);
    struct bench_time t0 = bench_now();
    long r = loop(n);
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
