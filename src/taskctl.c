/* taskctl.c - the command-line tool on tasks.json: add, list, verify, check, repair, reset, menu.
 *
 * taskctl works on the file directly, through the same store and the same
 * fcntl locks as the server, so it may run while servers append. Exit status:
 * 0 ok, 1 verification failed, 2 usage error, 3 file error. Every error is one
 * line on stderr, "taskctl: ", naming the file or the argument at fault.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "task_json.h"
#include "task_store.h"
#include "taskctl_menu.h"
#include "taskctl_ops.h"
#include "taskctl_verify.h"
#include "timeline_svg.h"
#include "timeline_text.h"
#include "trace_match.h"
#include "trace_read.h"
#include "version.h"

struct taskctl_command {
    const char *name;
    int (*run)(const struct taskctl_command *c, const char **path, int argc, char **argv);
    const char *usage;
};

static const char taskctl_usage[] =
    "usage: taskctl [-f FILE] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Reads and writes taskserver's tasks.json directly, under the same locks as the server.\n"
    "\n"
    "commands:\n"
    "  add [--cliente NAME] [--descripcion TEXT] [--seq N] [--fsync] TITULO...\n"
    "                   add one task per TITULO, print each with its id\n"
    "  list [--json]    show the tasks as a table, or the JSON array as stored\n"
    "  verify [--expect N] [--cliente PATTERN]\n"
    "                   check layout, ids, every cliente's seq and the count; never writes\n"
    "  check            report what repair would do; never writes\n"
    "  repair           cut a torn tail or rewrite another layout (the original is saved)\n"
    "  reset [--fsync]  empty the list under the write lock\n"
    "  timeline DIR [-o FILE] [--html] [--text]\n"
    "                   draw the workers' traces (taskserver --trace DIR) as a timeline\n"
    "  help [COMMAND]   show this text, or a command's\n"
    "\n"
    "With no command on a terminal: an interactive menu to add and list tasks.\n"
    "\n"
    "options:\n"
    "  -f, --file FILE  the task file (default: $TASKS_FILE, else ./tasks.json)\n"
    "  -h, --help       show this help (also after any command)\n"
    "  -V, --version    show the version and whether this build takes locks\n"
    "\n"
    "exit status: 0 ok, 1 verification failed, 2 usage error, 3 file error\n";

static const char add_usage[] =
    "usage: taskctl [-f FILE] add [--cliente NAME] [--descripcion TEXT] [--seq N] [--fsync]\n"
    "                             [--] TITULO...\n"
    "\n"
    "Adds one task per TITULO, in order, each under the write lock, and prints each\n"
    "with the id it was given. A TITULO is 1 to 1024 bytes of valid UTF-8; the\n"
    "options apply to every task added and are checked as the server checks them.\n"
    "The first invalid TITULO stops the command with status 2; the ones before it\n"
    "stay added. Creates the file if it does not exist. Use -- before a TITULO\n"
    "that starts with '-'.\n"
    "\n"
    "  --cliente NAME      the cliente field (at most 128 bytes)\n"
    "  --descripcion TEXT  the descripcion field (at most 4096 bytes)\n"
    "  --seq N             seq of the first task; the next ones get N+1, N+2, ...\n"
    "  --fsync             make each task durable (fdatasync) before printing it\n";

static const char list_usage[] =
    "usage: taskctl [-f FILE] list [--json]\n"
    "\n"
    "Shows every task stored so far as a table (id, creada, pid, cliente, seq,\n"
    "titulo) cut to the terminal's width, or 80 columns when not on a terminal.\n"
    "From about 90 columns on it also shows the host of the server that stored each\n"
    "task (COLUMNS=120 taskctl list: several servers on one file).\n"
    "Control characters are shown escaped.\n"
    "\n"
    "  --json  print the JSON array exactly as stored, one task per line\n";

static const char verify_usage[] =
    "usage: taskctl [-f FILE] verify [--expect N] [--cliente PATTERN]\n"
    "\n"
    "Reads the file line by line, without modifying it, and checks: the canonical\n"
    "layout, every record valid JSON, ids unique and increasing, every cliente's\n"
    "seq values 1..max each present exactly once, and the number of tasks.\n"
    "Prints a verdict naming what is damaged, missing or doubled. Exit status 0\n"
    "when everything holds, 1 when something does not, 3 when it cannot read.\n"
    "\n"
    "  --expect N          the file must hold exactly N tasks (with --cliente: N of them)\n"
    "  --cliente PATTERN   judge only the tasks whose cliente matches PATTERN (a shell\n"
    "                      pattern: \"*@run3\" is run 3 of the classroom); layout, damage\n"
    "                      and ids are still judged for the whole file\n"
    "\n"
    "It also counts the switches between clientes in file order: how interleaved the\n"
    "clients' tasks are.\n";

static const char check_usage[] =
    "usage: taskctl [-f FILE] check\n"
    "\n"
    "Runs the store's start-up check without repairing: reports the number of\n"
    "tasks and what `taskctl repair` would do. Never writes. Exit status 0 when\n"
    "the file is canonical, 1 when it needs repair or cannot be repaired.\n";

static const char repair_usage[] =
    "usage: taskctl [-f FILE] repair\n"
    "\n"
    "Repairs the file in place under the write lock, as the server does at\n"
    "start-up: creates a missing file, cuts a torn tail (the cut bytes are saved\n"
    "beside it), rewrites a valid array in another layout in the canonical one\n"
    "(the original is saved beside it). Refuses damage before the tail and\n"
    "leaves the file unchanged (status 3).\n";

static const char reset_usage[] =
    "usage: taskctl [-f FILE] reset [--fsync]\n"
    "\n"
    "Empties the list under the write lock: the safe replacement for\n"
    "`echo \"[]\" > tasks.json` while servers run. Creates the file if missing.\n"
    "\n"
    "  --fsync  make the empty list durable (fdatasync) before reporting it\n";

static const char timeline_usage[] =
    "usage: taskctl timeline DIR [-o FILE] [--html] [--text]\n"
    "\n"
    "Reads the event logs that `taskserver --trace DIR` wrote (DIR/worker-PID.trace, one\n"
    "per worker) and draws them as a timeline: one lane per worker, time to the right;\n"
    "lock waits, lock holds, tail reads and writes (labelled with the task's titulo), and\n"
    "every lost task circled, with an arrow to the write that overwrote it and a line\n"
    "between the two tail reads that saw the same end of the list. The summary says how\n"
    "many tasks were written and lost, and how many lock holds overlapped (0 with locks).\n"
    "Does not touch tasks.json (-f is ignored).\n"
    "\n"
    "  -o, --output FILE  write the picture to FILE (default: standard output)\n"
    "  --html             an HTML page with the same SVG, a legend and the figures\n"
    "  --text             print per-worker figures (lock wait and hold time, wait p50\n"
    "                     and p99, writes, lost) and the lost tasks; with -o, also draw\n"
    "\n"
    "exit status: 0 ok, 2 usage error, 3 a trace cannot be read or the output written\n";

static const char help_usage[] = "usage: taskctl help [COMMAND]\n";

/* ---- command-line parsing ---- */

static int is_flag(const char *arg, const char *shrt, const char *lng)
{
    return (shrt != NULL && strcmp(arg, shrt) == 0) || strcmp(arg, lng) == 0;
}

/* Matches argv[*i] against an option with a value: "-f X", "-fX", "--file X",
 * "--file=X". Returns 1 with *val set (and *i moved past a separate value), 0
 * when argv[*i] is another argument, -1 when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *cmd, const char *shrt,
                     const char *lng, const char **val)
{
    const char *arg = argv[*i];
    size_t n = strlen(lng);
    if (strncmp(arg, lng, n) == 0 && arg[n] == '=') {
        *val = arg + n + 1;
        return 1;
    }
    if (shrt != NULL && strncmp(arg, shrt, 2) == 0 && arg[2] != '\0') {
        *val = arg + 2;
        return 1;
    }
    if (!is_flag(arg, shrt, lng))
        return 0;
    if (*i + 1 >= argc) {
        taskctl_ops_error("%s%s%s needs a value", cmd, *cmd ? ": " : "", lng);
        return -1;
    }
    *i += 1;
    *val = argv[*i];
    return 1;
}

/* Parses a decimal integer 0..max with nothing around it. Returns 0 or -1. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Handles the options every command takes (-f FILE, --help). Returns 1 when
 * argv[*i] was one of them, 0 when not, -1 on a usage error, 2 after --help. */
static int common_option(const struct taskctl_command *c, const char **path, int argc, char **argv,
                         int *i)
{
    const char *val;
    if (is_flag(argv[*i], "-h", "--help")) {
        fputs(c->usage, stdout);
        return 2;
    }
    int rc = opt_value(argc, argv, i, c->name, "-f", "--file", &val);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        if (*val == '\0') {
            taskctl_ops_error("%s: --file needs a non-empty path", c->name);
            return -1;
        }
        *path = val;
        return 1;
    }
    return 0;
}

static int unknown_argument(const char *cmd, const char *arg)
{
    if (arg[0] == '-' && arg[1] != '\0')
        taskctl_ops_error("%s: unknown option %s (see taskctl %s --help)", cmd, arg, cmd);
    else
        taskctl_ops_error("%s: unexpected argument \"%s\" (see taskctl %s --help)", cmd, arg, cmd);
    return TASKCTL_EXIT_USAGE;
}

/* ---- add ---- */

static int cmd_add(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    struct taskctl_ops_fields f = {.seq = -1};
    const char *val;
    int first_titulo = 0, num_titulos = 0, fsync = 0, rc;
    char **titulos = calloc((size_t)argc, sizeof(*titulos));
    if (titulos == NULL) {
        taskctl_ops_error("add: %s", strerror(errno));
        return TASKCTL_EXIT_FILE;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (first_titulo || arg[0] != '-' || arg[1] == '\0') {
            titulos[num_titulos++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            first_titulo = 1;
            continue;
        }
        rc = common_option(c, path, argc, argv, &i);
        if (rc == 1)
            continue;
        if (rc != 0) {
            free(titulos);
            return rc == 2 ? TASKCTL_EXIT_OK : TASKCTL_EXIT_USAGE;
        }
        if (strcmp(arg, "--fsync") == 0) {
            fsync = 1;
            continue;
        }
        if ((rc = opt_value(argc, argv, &i, "add", NULL, "--cliente", &f.cliente)) != 0 ||
            (rc = opt_value(argc, argv, &i, "add", NULL, "--descripcion", &f.descripcion)) != 0) {
            if (rc < 0) {
                free(titulos);
                return TASKCTL_EXIT_USAGE;
            }
            continue;
        }
        if ((rc = opt_value(argc, argv, &i, "add", NULL, "--seq", &val)) != 0) {
            uint64_t seq;
            if (rc < 0 || parse_u64(val, TASK_SEQ_MAX, &seq) < 0) {
                if (rc > 0)
                    taskctl_ops_error("add: --seq \"%s\": must be an integer from 0 to %lld", val,
                                      (long long)TASK_SEQ_MAX);
                free(titulos);
                return TASKCTL_EXIT_USAGE;
            }
            f.seq = (int64_t)seq;
            continue;
        }
        free(titulos);
        return unknown_argument("add", arg);
    }
    if (num_titulos == 0) {
        free(titulos);
        taskctl_ops_error("add: no TITULO given (see taskctl add --help)");
        return TASKCTL_EXIT_USAGE;
    }
    if (f.seq >= 0 && (uint64_t)f.seq + (uint64_t)num_titulos - 1 > (uint64_t)TASK_SEQ_MAX) {
        free(titulos);
        taskctl_ops_error("add: --seq %lld: the last task's seq would pass %lld", (long long)f.seq,
                          (long long)TASK_SEQ_MAX);
        return TASKCTL_EXIT_USAGE;
    }

    struct task_store *s = taskctl_ops_open(*path, TASKCTL_OPEN_WRITE, fsync);
    if (s == NULL) {
        free(titulos);
        return TASKCTL_EXIT_FILE;
    }
    rc = TASKCTL_EXIT_OK;
    for (int k = 0; k < num_titulos; k++) {
        char err[TASKCTL_ERR_MAX];
        struct task_meta meta;
        int invalid;
        if (taskctl_ops_add(s, titulos[k], &f, &meta, &invalid, err, sizeof(err)) == 0) {
            if (f.seq >= 0)
                f.seq++;
            continue;
        }
        if (invalid) {
            taskctl_ops_error("add: TITULO %d of %d: %s; %d task%s added before it", k + 1,
                              num_titulos, err, k, k == 1 ? "" : "s");
            rc = TASKCTL_EXIT_USAGE;
        } else {
            int saved = errno;
            if (err[0] == '\0')
                snprintf(err, sizeof(err), "append to %s: %s", *path, strerror(saved));
            taskctl_ops_error("%s%s; %d task%s added before the error", err,
                              taskctl_ops_hint(saved), k, k == 1 ? "" : "s");
            rc = TASKCTL_EXIT_FILE;
        }
        break;
    }
    task_store_close(s);
    free(titulos);
    return rc;
}

static int cmd_list(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int rc = common_option(c, path, argc, argv, &i);
        if (rc == 2)
            return TASKCTL_EXIT_OK;
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 1)
            continue;
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else
            return unknown_argument("list", argv[i]);
    }
    return taskctl_ops_list(*path, json);
}

/* ---- verify, check, repair, reset ---- */

static int cmd_verify(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    struct taskctl_verify_options opts = {0};
    char err[TASKCTL_ERR_MAX] = "";
    const char *val;
    for (int i = 1; i < argc; i++) {
        int rc = common_option(c, path, argc, argv, &i);
        if (rc == 2)
            return TASKCTL_EXIT_OK;
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 1)
            continue;
        rc = opt_value(argc, argv, &i, "verify", NULL, "--cliente", &val);
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 1) {
            opts.cliente_glob = val;
            continue;
        }
        rc = opt_value(argc, argv, &i, "verify", NULL, "--expect", &val);
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 0)
            return unknown_argument("verify", argv[i]);
        if (parse_u64(val, UINT64_MAX, &opts.expect) < 0) {
            taskctl_ops_error("verify: --expect \"%s\": must be a non-negative integer", val);
            return TASKCTL_EXIT_USAGE;
        }
        opts.has_expect = 1;
    }
    int rc = taskctl_verify(*path, &opts, stdout, err, sizeof(err));
    if (rc < 0) {
        fflush(stdout);
        taskctl_ops_error("%s", err);
        return TASKCTL_EXIT_FILE;
    }
    return rc == 0 ? TASKCTL_EXIT_OK : TASKCTL_EXIT_FAILED;
}

/* Only -f and --help: returns -1 to go on, or the exit status. */
static int no_arguments(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int rc = common_option(c, path, argc, argv, &i);
        if (rc == 2)
            return TASKCTL_EXIT_OK;
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 0)
            return unknown_argument(c->name, argv[i]);
    }
    return -1;
}

/* The errors that mean "cannot get at the file" rather than "the file is bad". */
static int is_access_error(int err)
{
    return err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM || err == EISDIR ||
           err == ELOOP || err == ENAMETOOLONG || err == EROFS || err == EIO;
}

static int cmd_check(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    struct task_store_report rep;
    char err[TASKCTL_ERR_MAX] = "";
    struct stat sb;
    int rc = no_arguments(c, path, argc, argv);
    if (rc >= 0)
        return rc;
    /* A missing file is a file error here, not "repair would create it":
     * check is asked about a file the user believes exists. */
    if (stat(*path, &sb) < 0) {
        taskctl_ops_error("stat %s: %s", *path, strerror(errno));
        return TASKCTL_EXIT_FILE;
    }
    memset(&rep, 0, sizeof(rep));
    if (task_store_check(*path, 0, &rep, err, sizeof(err)) < 0) {
        int saved = errno;
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "check %s: %s", *path, strerror(saved));
        taskctl_ops_error("%s", err);
        return is_access_error(saved) ? TASKCTL_EXIT_FILE : TASKCTL_EXIT_FAILED;
    }
    if (!rep.created && !rep.canonicalized && !rep.torn_cut) {
        printf("check %s: canonical, %llu tasks\n", *path, (unsigned long long)rep.num_tasks);
        return TASKCTL_EXIT_OK;
    }
    if (rep.created)
        printf("check %s: empty file: taskctl repair would write an empty list\n", *path);
    if (rep.canonicalized)
        printf("check %s: a valid array in another layout: taskctl repair would rewrite it "
               "in the canonical one (%llu tasks, %llu of them with a new id) and save the "
               "original\n",
               *path, (unsigned long long)rep.num_tasks, (unsigned long long)rep.renumbered);
    if (rep.torn_cut)
        printf("check %s: torn tail at byte %lld: taskctl repair would cut %zu bytes and "
               "keep %llu tasks\n",
               *path, (long long)rep.torn_offset, rep.torn_bytes,
               (unsigned long long)rep.num_tasks);
    return TASKCTL_EXIT_FAILED;
}

static int cmd_repair(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    struct task_store_report rep;
    char err[TASKCTL_ERR_MAX] = "";
    int rc = no_arguments(c, path, argc, argv);
    if (rc >= 0)
        return rc;
    memset(&rep, 0, sizeof(rep));
    if (task_store_check(*path, TASK_STORE_REPAIR, &rep, err, sizeof(err)) < 0) {
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "repair %s: %s", *path, strerror(errno));
        taskctl_ops_error("%s%s", err, rep.restore_failed ? "" : "; the file was not modified");
        return TASKCTL_EXIT_FILE;
    }
    if (rep.created)
        printf("repair %s: created an empty list\n", *path);
    if (rep.canonicalized && rep.saved_path[0] == '\0') /* "[]": nothing worth a copy */
        printf("repair %s: rewrote an empty list in the canonical layout\n", *path);
    else if (rep.canonicalized)
        printf("repair %s: rewrote it in the canonical layout, %llu tasks, %llu of them with "
               "a new id (ids are positions, 1..n); the original is saved as %s\n",
               *path, (unsigned long long)rep.num_tasks, (unsigned long long)rep.renumbered,
               rep.saved_path);
    if (rep.torn_cut)
        printf("repair %s: cut a torn tail of %zu bytes at byte %lld, %llu tasks kept; the cut "
               "bytes are saved as %s\n",
               *path, rep.torn_bytes, (long long)rep.torn_offset, (unsigned long long)rep.num_tasks,
               rep.saved_path);
    if (!rep.created && !rep.canonicalized && !rep.torn_cut)
        printf("repair %s: nothing to repair, %llu tasks\n", *path,
               (unsigned long long)rep.num_tasks);
    return TASKCTL_EXIT_OK;
}

static int cmd_reset(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    char err[TASKCTL_ERR_MAX] = "";
    int fsync = 0, rc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fsync") == 0) {
            fsync = 1;
            continue;
        }
        rc = common_option(c, path, argc, argv, &i);
        if (rc == 2)
            return TASKCTL_EXIT_OK;
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 0)
            return unknown_argument("reset", argv[i]);
    }
    struct task_store *s = taskctl_ops_open(*path, TASKCTL_OPEN_CREATE, fsync);
    if (s == NULL)
        return TASKCTL_EXIT_FILE;
    rc = TASKCTL_EXIT_OK;
    if (task_store_reset(s, err, sizeof(err)) < 0) {
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "reset %s: %s", *path, strerror(errno));
        taskctl_ops_error("%s", err);
        rc = TASKCTL_EXIT_FILE;
    } else {
        printf("reset %s: the list is empty\n", *path);
    }
    task_store_close(s);
    return rc;
}

/* ---- timeline ---- */

static int cmd_timeline(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    const char *dir = NULL, *output = NULL;
    int html = 0, text = 0, rc;
    char err[TASKCTL_ERR_MAX] = "";
    for (int i = 1; i < argc; i++) {
        rc = common_option(c, path, argc, argv, &i);
        if (rc == 2)
            return TASKCTL_EXIT_OK;
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 1)
            continue;
        if ((rc = opt_value(argc, argv, &i, "timeline", "-o", "--output", &output)) != 0) {
            if (rc < 0)
                return TASKCTL_EXIT_USAGE;
            if (*output == '\0') {
                taskctl_ops_error("timeline: --output needs a non-empty path");
                return TASKCTL_EXIT_USAGE;
            }
            continue;
        }
        if (strcmp(argv[i], "--html") == 0)
            html = 1;
        else if (strcmp(argv[i], "--text") == 0)
            text = 1;
        else if (argv[i][0] == '-' || dir != NULL)
            return unknown_argument("timeline", argv[i]);
        else
            dir = argv[i];
    }
    if (dir == NULL) {
        taskctl_ops_error("timeline: no DIR given (see taskctl timeline --help)");
        return TASKCTL_EXIT_USAGE;
    }
    if (html && text && output == NULL) {
        taskctl_ops_error("timeline: --html with --text needs -o FILE for the page");
        return TASKCTL_EXIT_USAGE;
    }

    struct trace_set set;
    struct trace_analysis an;
    trace_set_init(&set);
    if (trace_set_read_dir(&set, dir, err, sizeof(err)) < 0) {
        taskctl_ops_error("%s", err);
        trace_set_free(&set);
        return TASKCTL_EXIT_FILE;
    }
    trace_set_merge(&set);
    if (trace_analyze(&set, &an) < 0) {
        taskctl_ops_error("timeline %s: %s", dir, strerror(errno));
        trace_set_free(&set);
        return TASKCTL_EXIT_FILE;
    }
    rc = TASKCTL_EXIT_OK;
    if (text && timeline_text_write(stdout, &set, &an) < 0) {
        taskctl_ops_error("write to stdout: %s", strerror(errno));
        rc = TASKCTL_EXIT_FILE;
    }
    if (rc == TASKCTL_EXIT_OK && (!text || output != NULL)) {
        FILE *out = output != NULL ? fopen(output, "w") : stdout;
        if (out == NULL) {
            taskctl_ops_error("timeline: open %s: %s", output, strerror(errno));
            rc = TASKCTL_EXIT_FILE;
        } else {
            int w = html ? timeline_html_write(out, &set, &an) : timeline_svg_write(out, &set, &an);
            int saved = errno;
            if (out != stdout && fclose(out) != 0 && w == 0) {
                w = -1;
                saved = errno;
            }
            if (w < 0) {
                taskctl_ops_error("timeline: write %s: %s", output ? output : "to stdout",
                                  strerror(saved));
                rc = TASKCTL_EXIT_FILE;
            }
        }
    }
    trace_analysis_free(&an);
    trace_set_free(&set);
    return rc;
}

static int cmd_help(const struct taskctl_command *c, const char **path, int argc, char **argv);

static const struct taskctl_command commands[] = {
    {"add", cmd_add, add_usage},
    {"list", cmd_list, list_usage},
    {"verify", cmd_verify, verify_usage},
    {"check", cmd_check, check_usage},
    {"repair", cmd_repair, repair_usage},
    {"reset", cmd_reset, reset_usage},
    {"timeline", cmd_timeline, timeline_usage},
    {"help", cmd_help, help_usage},
};

#define TASKCTL_NUM_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct taskctl_command *command_find(const char *name)
{
    for (size_t i = 0; i < TASKCTL_NUM_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(const struct taskctl_command *c, const char **path, int argc, char **argv)
{
    (void)path;
    (void)c;
    if (argc == 1) {
        fputs(taskctl_usage, stdout);
        return TASKCTL_EXIT_OK;
    }
    const struct taskctl_command *topic = command_find(argv[1]);
    if (argc > 2 || (topic == NULL && !is_flag(argv[1], "-h", "--help"))) {
        taskctl_ops_error("help: unknown command \"%s\" (see taskctl --help)",
                          argv[argc > 2 ? 2 : 1]);
        return TASKCTL_EXIT_USAGE;
    }
    fputs(topic != NULL ? topic->usage : help_usage, stdout);
    return TASKCTL_EXIT_OK;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    const char *path = getenv("TASKS_FILE");
    int i;

    log_init("taskctl");
    version_warn_if_unlocked("taskctl");
    if (path == NULL || *path == '\0')
        path = "tasks.json";
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *val;
        if (is_flag(argv[i], "-h", "--help")) {
            fputs(taskctl_usage, stdout);
            return TASKCTL_EXIT_OK;
        }
        if (is_flag(argv[i], "-V", "--version")) {
            version_print(stdout, "taskctl");
            return TASKCTL_EXIT_OK;
        }
        int rc = opt_value(argc, argv, &i, "", "-f", "--file", &val);
        if (rc < 0)
            return TASKCTL_EXIT_USAGE;
        if (rc == 0) {
            taskctl_ops_error("unknown option %s (see taskctl --help)", argv[i]);
            return TASKCTL_EXIT_USAGE;
        }
        if (*val == '\0') {
            taskctl_ops_error("--file needs a non-empty path");
            return TASKCTL_EXIT_USAGE;
        }
        path = val;
    }
    if (i == argc) {
        if (isatty(STDIN_FILENO))
            return taskctl_menu_run(path);
        taskctl_ops_error("no command given and stdin is not a terminal (see taskctl --help)");
        return TASKCTL_EXIT_USAGE;
    }
    const struct taskctl_command *c = command_find(argv[i]);
    if (c == NULL) {
        taskctl_ops_error("unknown command \"%s\" (see taskctl --help)", argv[i]);
        return TASKCTL_EXIT_USAGE;
    }
    int rc = c->run(c, &path, argc - i, argv + i);
    if (fflush(stdout) != 0 && rc == TASKCTL_EXIT_OK) {
        taskctl_ops_error("write to stdout: %s", strerror(errno));
        rc = TASKCTL_EXIT_FILE;
    }
    return rc;
}
