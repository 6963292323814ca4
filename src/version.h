/* version.h - what every binary says about itself: version and whether it locks.
 *
 * Every program calls version_warn_if_unlocked() once at start and prints
 * version_print() for --version, so a build made with -Dlocking=false can never
 * be mistaken for a safe one.
 */
#ifndef TASKSERVER_VERSION_H
#define TASKSERVER_VERSION_H

#include <stdio.h>

/* 1 when this build takes fcntl locks on tasks.json, 0 for the race-demo build. */
int version_locking(void);

/* The version string, e.g. "0.1.0". */
const char *version_string(void);

/* Prints "PROG 0.1.0 (locking on)" or "(locking OFF: loses tasks on purpose)" to out. */
void version_print(FILE *out, const char *prog);

/* In a build without locking, prints one loud warning line to stderr; else nothing. */
void version_warn_if_unlocked(const char *prog);

#endif
