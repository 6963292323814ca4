/* fault_lockholder.c - prints the pid of the process holding a lock on a file, for the fault suite.
 *
 *     fault_lockholder FILE [WAIT_MS]
 *
 * Asks the kernel with fcntl(F_GETLK) which process holds a lock that would
 * conflict with a write lock on the whole file: that is how the fault suite
 * finds the worker sitting inside the locked section, to SIGSTOP exactly it.
 * Polls every 10 ms for up to WAIT_MS (default 0: ask once).
 *
 * F_GETLK only reports locks of other processes (our own never conflict), and
 * this program takes none: opening and closing its own descriptor drops no
 * lock of anyone else. The file is opened read-only, so the question works
 * on a file this process could not lock for writing itself.
 *
 * Prints "PID TYPE" (TYPE read or write) and exits 0, or prints "none" and
 * exits 1 when nobody held a lock in time; 2 usage error, 3 system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fputs("usage: fault_lockholder FILE [WAIT_MS]\n", stderr);
        return 2;
    }
    long wait_ms = argc == 3 ? atol(argv[2]) : 0;
    int fd;
    do
        fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        fprintf(stderr, "fault_lockholder: open %s: %s\n", argv[1], strerror(errno));
        return 3;
    }
    for (long waited = 0;; waited += 10) {
        struct flock fl;
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET; /* l_start 0, l_len 0: the whole file */
        if (fcntl(fd, F_GETLK, &fl) < 0) {
            fprintf(stderr, "fault_lockholder: fcntl F_GETLK %s: %s\n", argv[1], strerror(errno));
            close(fd);
            return 3;
        }
        if (fl.l_type != F_UNLCK) {
            printf("%ld %s\n", (long)fl.l_pid, fl.l_type == F_WRLCK ? "write" : "read");
            close(fd);
            return 0;
        }
        if (waited >= wait_ms)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    printf("none\n");
    close(fd);
    return 1;
}
