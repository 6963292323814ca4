/* fault_kill.c - SIGKILLs a random child of a process at a steady pace, for the fault suite.
 *
 *     fault_kill PID INTERVAL_MS DURATION_MS
 *
 * Every INTERVAL_MS for DURATION_MS, reads PID's children from
 * /proc/PID/task/PID/children and sends SIGKILL to one of them, chosen at
 * random. A shell loop cannot keep a 100 ms pace on two cores saturated by
 * the load it runs beside (each round forks sleep and friends); this can.
 * The deadlines are absolute, so a late round does not shift the next ones.
 * Prints "kills=N rounds=R empty=E" (E: rounds in which PID had no child at
 * all, i.e. a server with no worker to answer) and exits 0; 2 usage error,
 * 3 PID gone at start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KILL_MAX_CHILDREN 256

static int kill_read_children(const char *path, long *pids)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int n = 0;
    while (n < KILL_MAX_CHILDREN && fscanf(f, "%ld", &pids[n]) == 1)
        n++;
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 4 || atol(argv[1]) <= 1 || atol(argv[2]) <= 0 || atol(argv[3]) < 0) {
        fputs("usage: fault_kill PID INTERVAL_MS DURATION_MS\n", stderr);
        return 2;
    }
    long pid = atol(argv[1]), interval_ms = atol(argv[2]), duration_ms = atol(argv[3]);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", pid, pid);
    long pids[KILL_MAX_CHILDREN];
    if (kill_read_children(path, pids) < 0) {
        fprintf(stderr, "fault_kill: open %s: %s\n", path, strerror(errno));
        return 3;
    }
    srand((unsigned)getpid());
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long rounds = duration_ms / interval_ms, kills = 0, empty = 0;
    for (long r = 0; r < rounds; r++) {
        int n = kill_read_children(path, pids);
        if (n < 0)
            break; /* the parent is gone: nothing left to kill */
        if (n == 0)
            empty++;
        if (n > 0 && kill((pid_t)pids[rand() % n], SIGKILL) == 0)
            kills++;
        next.tv_nsec += interval_ms * 1000000L;
        next.tv_sec += next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    printf("kills=%ld rounds=%ld empty=%ld\n", kills, rounds, empty);
    return 0;
}
