/*
 * sud.c: Syscall User Dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH, Linux 5.11+). While the selector
 * byte says BLOCK, every `syscall` outside the allowed range raises SIGSYS; the handler answers
 * getppid from a cached value by writing rax in the signal frame. The handler returns through a
 * restorer of our own whose `rt_sigreturn` lies in the allowed range, so the selector never has to
 * change inside the loop. Timestamps are taken with the selector at ALLOW (clock_gettime may be a
 * real system call where the vDSO cannot serve it).
 */
#include "bench-loop.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif
#ifndef PR_SYS_DISPATCH_ON
#define PR_SYS_DISPATCH_ON 1
#endif
#define SELECTOR_ALLOW 0
#define SELECTOR_BLOCK 1
#define KERNEL_SA_RESTORER 0x04000000UL

/* The only code allowed to make system calls while the selector blocks them. */
__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "sud_restorer:\n"
    "    mov $15, %eax\n"      /* rt_sigreturn */
    "    syscall\n"
    "    hlt\n"
    "sud_restorer_end:\n");
extern char sud_restorer[], sud_restorer_end[];

static volatile char selector = SELECTOR_ALLOW;

static void on_sigsys(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    ucontext_t *uc = context;
    if (uc->uc_mcontext.gregs[REG_RAX] == 110)       /* the kernel put the number back in rax */
        uc->uc_mcontext.gregs[REG_RAX] = bench_cached;
    else
        uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
    (void)info;
}

struct kernel_sigaction {
    void (*handler)(int, siginfo_t *, void *);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

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
    struct kernel_sigaction sa = { on_sigsys, SA_SIGINFO | KERNEL_SA_RESTORER, (void (*)(void))sud_restorer, 0 };
    if (syscall(SYS_rt_sigaction, SIGSYS, &sa, NULL, 8) != 0) { perror("rt_sigaction"); return 1; }
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long)sud_restorer,
              (unsigned long)(sud_restorer_end - sud_restorer), &selector) != 0) {
        fprintf(stderr, "PR_SET_SYSCALL_USER_DISPATCH: %s\n", strerror(errno));
        return errno == EINVAL ? 77 : 1;
    }
    selector = SELECTOR_BLOCK;
    loop(n / 20 + 100);
    selector = SELECTOR_ALLOW;
    struct bench_time t0 = bench_now();
    selector = SELECTOR_BLOCK;
    long r = loop(n);
    selector = SELECTOR_ALLOW;
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
