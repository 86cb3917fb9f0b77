/*
 * The quickstart's example program. Every system call it makes goes through the seed's
 * SYSCALL_INST (glibc libOS RFC 09/11): `syscall` followed by 10 NOPs, recorded in
 * .libos.instructions.syscall. Built as it is, it runs natively; rewritten by
 * `libos-patch apply --recipe glibc-rfc`, each of those sites jumps to the recipe's entry instead.
 *
 *   gcc -O2 -no-pie -I fixtures/include -o hello examples/hello.c
 */
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>

#include "syscall-inst.h"

static long say(const char *text)
{
    unsigned long n = 0;
    while (text[n] != 0)
        n++;
    return libos_sc3(SYS_write, 1, (long)text, (long)n);
}

/* Decimal digits of a non-negative number into buf (at least 21 bytes). */
static const char *decimal(long value, char *buf)
{
    char *p = buf + 20;
    *p = 0;
    do {
        *--p = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    return p;
}

int main(void)
{
    char digits[21];
    say("hello from a program whose syscalls a LibOS can take over\n");

    say("my pid is ");
    say(decimal(libos_sc0(SYS_getpid), digits));
    say("\n");

    struct timespec now;
    if (libos_sc2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&now) == 0)
        say("the monotonic clock ticks\n");

    say("my uid is ");
    say(decimal(libos_sc0(SYS_getuid), digits));
    say("\n");

    /* A file read: the trace shows a path argument, and gcc keeps these numbers in registers, so
     * the sites' numbers are only known at run time. */
    long fd = libos_sc4(SYS_openat, AT_FDCWD, (long)"/proc/self/comm", O_RDONLY, 0);
    if (fd >= 0) {
        char comm[32];
        long n = libos_sc3(SYS_read, fd, (long)comm, sizeof comm);
        libos_sc1(SYS_close, fd);
        if (n > 0) {
            say("my name is ");
            libos_sc3(SYS_write, 1, (long)comm, n);
        }
    }

    libos_sc1(SYS_exit_group, 0);
    __builtin_unreachable();
}
