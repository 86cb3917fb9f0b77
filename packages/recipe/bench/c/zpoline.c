/*
 * zpoline.c: the zpoline design. The site is `call *%rax` (2 bytes, like `syscall`) with the system
 * call number in rax, so it calls address 0..~500. Page 0 holds NOPs up to byte 512 and then
 * `movabs $hook,%r11; jmp *%r11`: each call slides down the NOPs to the hook, which returns with
 * `ret` to the site. The call's return address is pushed into the caller's red zone (compiled with
 * -mno-red-zone here so nothing lives there).
 *
 * Mapping page 0 needs vm.mmap_min_addr = 0, or CAP_SYS_RAWIO (root) where no LSM forbids it: if
 * mmap refuses, the program exits 77 (skipped). Usage: `zpoline N [cached|pass]`: the hook answers
 * from a cached value (hook-only) or makes the real call (passthrough).
 */
#include "bench-loop.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "zp_hook_cached:\n"
    "    movq bench_cached(%rip), %rax\n"
    "    ret\n"
    "    .p2align 4\n"
    "zp_hook_pass:\n"
    "    syscall\n"
    "    ret\n");
extern char zp_hook_cached[], zp_hook_pass[];

#define SLED 512

static __attribute__((noinline)) long loop(long n)
{
    long r = 0;
    for (long i = 0; i < n; i++)
        __asm__ volatile("mov $110, %%eax\n\tcall *%%rax" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    int pass = argc > 2 && strcmp(argv[2], "pass") == 0;
    bench_cached = getppid();
    unsigned char *page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (page == MAP_FAILED) {
        fprintf(stderr, "mmap at address 0: %s (vm.mmap_min_addr > 0 and no CAP_SYS_RAWIO)\n", strerror(errno));
        return 77;
    }
    memset(page, 0x90, SLED);
    uint64_t hook = (uint64_t)(uintptr_t)(pass ? zp_hook_pass : zp_hook_cached);
    unsigned char *p = page + SLED;
    *p++ = 0x49; *p++ = 0xbb;                       /* movabs $hook, %r11 */
    memcpy(p, &hook, 8); p += 8;
    *p++ = 0x41; *p++ = 0xff; *p++ = 0xe3;          /* jmp *%r11 */
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) { perror("mprotect"); return 1; }
    loop(n / 20 + 1000);
    struct bench_time t0 = bench_now();
    long r = loop(n);
    struct bench_time t1 = bench_now();
    return bench_report(t0, t1, 0, n, r);
}
