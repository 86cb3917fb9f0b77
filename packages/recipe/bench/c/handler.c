/* handler.c: the hook-only C handler (`handler` entry): answers getppid with a constant, forwards
 * everything else. Built by libos-patch with its fixed flags (-O2 -mgeneral-regs-only ...). */
#include <libos-handler.h>

long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    if (nr == 110)
        return 4242;
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
