/* proctitle.h - process titles that ps shows: "taskserver: master", "taskserver: worker 1".
 *
 *     int main(int argc, char **argv)
 *     {
 *         proctitle_init(argc, argv);     (first: before anything keeps a pointer
 *                                          into argv[] or into getenv()'s strings)
 *         ...parse argv, read the environment...
 *         proctitle_set("taskserver", "taskserver: master");
 *         after fork(), in the child:
 *         proctitle_set("taskserver-w1", "taskserver: worker %u", 1);
 *
 * The title replaces the command line that ps, top and /proc/PID/cmdline show, the way
 * nginx shows "nginx: master process" and "nginx: worker process": it is written over the
 * argv[] strings, which the kernel reports as the command line, after the environment
 * strings that follow them in memory have been copied elsewhere (environ then points to
 * the copies, so getenv() keeps working). The original argv[] strings are gone after the
 * first proctitle_set(): copy what you need from them before.
 *
 * comm, the short name (at most 15 bytes) that `ps -e`, `top` and pgrep match, is set with
 * prctl(PR_SET_NAME); the kernel cuts a longer one.
 *
 * Errors: none reported. Without proctitle_init(), or when it could not copy the
 * environment, proctitle_set() only sets comm. A title longer than the space of the
 * original command line and environment is cut to fit.
 */
#ifndef TASKSERVER_PROCTITLE_H
#define TASKSERVER_PROCTITLE_H

/* Moves the environment strings out of the way. Call once, first thing in main(). */
void proctitle_init(int argc, char **argv);

/* Sets comm to comm (may be NULL: unchanged) and the command line to the formatted title. */
void proctitle_set(const char *comm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
