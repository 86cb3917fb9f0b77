/*
 * bench-loop.h: the timing harness shared by the interception benchmarks (intercept.bench.ts).
 *
 * Each program runs `getppid` (110) through one interception method N times in a tight loop and
 * prints one line, `<cpu ns per call> <wall ns per call> <last result>`. CPU time (user + system,
 * CLOCK_PROCESS_CPUTIME_ID) is the headline figure: on a shared machine the wall time also holds
 * the time other processes held the CPU. The bench checks the result (the real parent's
 * pid, or 4242 from the C handler) so a method that stopped intercepting, or answered wrongly, is
 * caught rather than timed. Usage: `prog N`. Exit status 77 with a reason on stderr: the method
 * is not available on this machine (skipped, not failed).
 */
#ifndef LIBOS_BENCH_LOOP_H
#define LIBOS_BENCH_LOOP_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The value a hook-only method answers getppid with: the real parent pid, cached at start. */
long bench_cached;

/* A point in time on both clocks. */
struct bench_time {
    double wall_ns;
    double cpu_ns;
};

static inline double bench_clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline struct bench_time bench_now(void)
{
    struct bench_time t = { bench_clock_ns(CLOCK_MONOTONIC), bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) };
    return t;
}

static inline long bench_iterations(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    return n > 0 ? n : 1;
}

/* extra_cpu_ns: CPU time spent elsewhere on the calls (the tracee of a ptrace tracer). */
static inline int bench_report(struct bench_time t0, struct bench_time t1, double extra_cpu_ns, long n, long result)
{
    printf("%.4f %.4f %ld\n", (t1.cpu_ns - t0.cpu_ns + extra_cpu_ns) / (double)n, (t1.wall_ns - t0.wall_ns) / (double)n, result);
    return 0;
}

#endif /* LIBOS_BENCH_LOOP_H */
