/*
 * seccomp.c: a seccomp filter returns SECCOMP_RET_TRAP for getppid (everything else is allowed);
 * the SIGSYS handler answers from a cached value by writing rax in the signal frame.
 */
#include "bench-loop.h"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static void on_sigsys(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    ucontext_t *uc = context;
    uc->uc_mcontext.gregs[REG_RAX] = info->si_syscall == 110 ? bench_cached : -ENOSYS;
}

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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 110, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        fprintf(stderr, "seccomp: %s\n", strerror(errno));
        return errno == EINVAL ? 77 : 1;
    }
    loop(n / 20 + 100);
    struct bench_time t0 = bench_now();
    long r = loop(n);
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
