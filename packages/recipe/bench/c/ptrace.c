/*
 * ptrace.c: a tracer answers the tracee's getppid with PTRACE_SYSEMU (one stop per call: the kernel
 * skips the call and the tracer writes the result into rax), the way a ptrace-based sandbox emulates
 * calls. Tracer and tracee are pinned to one CPU (sched_setaffinity): across CPUs each stop costs a
 * cross-CPU wake-up and the figure is dominated by it.
 *
 * The tracee stops itself with SIGSTOP, runs only the loop, then calls exit_group. The tracer times
 * from the first resume to the exit_group stop (so the figure holds every stop of the loop; the CPU
 * figure adds the tracee's own CPU time, from wait4), then
 * rewinds the exit_group so it runs natively once detached. The tracer answers getppid with its own
 * parent's pid (the bench process), the value every other method answers with; the tracee checks
 * its last answer and reports it in its exit status.
 */
#include "bench-loop.h"
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif

static __attribute__((noinline, noreturn)) void tracee(long n)
{
    long r = 0;
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
        _exit(2);
    long pid = syscall(SYS_getpid);
    /* kill through a raw syscall: the stop is delivered on its return, no wrapper code after it. */
    __asm__ volatile("syscall" : "=a"(r) : "0"(62L), "D"(pid), "S"((long)SIGSTOP) : "rcx", "r11", "memory");
    for (long i = 0; i < n; i++)
        __asm__ volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    /* exit_group(status): the loop's last result must be the answer, so report it in the status. */
    __asm__ volatile("syscall" : : "a"(231L), "D"(r == bench_cached ? 0L : 3L) : "rcx", "r11", "memory");
    __builtin_unreachable();
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    bench_cached = getppid();               /* the tracer answers with its parent's pid */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) { perror("sched_setaffinity"); return 1; }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0)
        tracee(n);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) { fprintf(stderr, "tracee did not stop\n"); return 1; }
    if (ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) { perror("PTRACE_SETOPTIONS"); return 1; }
    long answered = 0;
    struct bench_time t0 = bench_now(), t1 = t0;
    if (ptrace(PTRACE_SYSEMU, child, 0, 0) != 0) {
        fprintf(stderr, "PTRACE_SYSEMU: %s\n", strerror(errno));
        kill(child, SIGKILL);
        return errno == EIO || errno == EINVAL ? 77 : 1;
    }
    for (;;) {
        if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 1; }
        if (WIFEXITED(status) || WIFSIGNALED(status)) { fprintf(stderr, "tracee ended early\n"); return 1; }
        if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) {
            ptrace(PTRACE_SYSEMU, child, 0, WIFSTOPPED(status) ? WSTOPSIG(status) : 0);
            continue;
        }
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, child, 0, &regs);
        if (regs.orig_rax == 110) {
            regs.rax = (unsigned long long)bench_cached;
            ptrace(PTRACE_SETREGS, child, 0, &regs);
            answered++;
            ptrace(PTRACE_SYSEMU, child, 0, 0);
            continue;
        }
        /* exit_group: the loop is over. Run it natively: back to the syscall instruction, detach. */
        t1 = bench_now();
        regs.rip -= 2;
        regs.rax = regs.orig_rax;
        ptrace(PTRACE_SETREGS, child, 0, &regs);
        ptrace(PTRACE_DETACH, child, 0, 0);
        break;
    }
    /* The tracee's CPU time (its whole life: the loop and a few calls before it) counts too. */
    struct rusage usage;
    if (wait4(child, &status, 0, &usage) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || answered != n) {
        fprintf(stderr, "tracee: status 0x%x, %ld of %ld calls answered\n", status, answered, n);
        return 1;
    }
    double tracee_ns = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e9 + (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e3;
    return bench_report(t0, t1, tracee_ns, n, bench_cached);
}
