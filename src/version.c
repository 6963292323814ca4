/* version.c - version string and the locking flag of this build. */
#include "version.h"

#include "build_config.h"

int version_locking(void)
{
    return TASKSERVER_LOCKING;
}

const char *version_string(void)
{
    return TASKSERVER_VERSION;
}

void version_print(FILE *out, const char *prog)
{
    fprintf(out, "%s %s (%s)\n", prog, TASKSERVER_VERSION,
            TASKSERVER_LOCKING ? "locking on" : "locking OFF: loses tasks on purpose");
}

void version_warn_if_unlocked(const char *prog)
{
    if (!TASKSERVER_LOCKING)
        fprintf(stderr,
                "%s: WARNING: built with -Dlocking=false: tasks.json is written without locks "
                "and tasks WILL be lost under concurrency (race demo build)\n",
                prog);
}
