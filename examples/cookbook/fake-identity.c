/*
 * A C handler for the cookbook: a tiny "LibOS" that answers the identity calls itself (the
 * program is told it runs as uid 1000 in pid 4242) and forwards everything else to the kernel.
 * At exit it reports how many calls it saw. Built by libos-patch (docs/handlers.md): no libc,
 * general registers only; libos_syscallN makes a real system call that is not intercepted.
 */
#include <libos-handler.h>
#include <sys/syscall.h>

static long calls;

/* Decimal digits of n into buf (at least 21 bytes); returns where they start. */
static char *decimal(long n, char *buf)
{
    char *p = buf + 20;
    *p = 0;
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    return p;
}

static void say(const char *text)
{
    long n = 0;
    while (text[n] != 0)
        n++;
    libos_syscall3(SYS_write, 2, (long)text, n);
}

long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    switch (nr) {
    case SYS_getpid:
        return 4242;
    case SYS_getuid:
    case SYS_geteuid:
        return 1000;
    case SYS_exit_group: {
        char digits[21];
        say("[fake-identity] calls seen: ");
        say(decimal(__atomic_load_n(&calls, __ATOMIC_RELAXED), digits));
        say("\n");
        break;
    }
    }
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
