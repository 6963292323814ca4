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
#include "taskctl_args.h"
#include "taskctl_menu.h"
#include "taskctl_ops.h"
#include "taskctl_verify.h"
#include "timeline_svg.h"
#include "timeline_text.h"
#include "trace_match.h"
#include "trace_read.h"
#include "version.h"

/* ---- the commands' syntax: options as rows, the help around them ---- */

static const struct taskctl_option add_options[] = {
    {"--cliente", 0, TASKCTL_OPT_TEXT, TASKCTL_FIELD(cliente), 0, "NAME",
     "the cliente field (at most 128 bytes)"},
    {"--descripcion", 0, TASKCTL_OPT_TEXT, TASKCTL_FIELD(descripcion), 0, "TEXT",
     "the descripcion field (at most 4096 bytes)"},
    {"--seq", 0, TASKCTL_OPT_COUNT, TASKCTL_FIELD(seq), TASK_SEQ_MAX, "N",
     "seq of the first task; the next ones get N+1, N+2, ..."},
    {"--fsync", 0, TASKCTL_OPT_FLAG, TASKCTL_FIELD(fsync), 0, NULL,
     "make each task durable (fdatasync) before printing it"},
};

static const struct taskctl_option list_options[] = {
    {"--json", 0, TASKCTL_OPT_FLAG, TASKCTL_FIELD(json), 0, NULL,
     "print the JSON array exactly as stored, one task per line"},
};

static const struct taskctl_option verify_options[] = {
    {"--expect", 0, TASKCTL_OPT_COUNT, TASKCTL_FIELD(expect), UINT64_MAX, "N",
     "the file must hold exactly N tasks (with --cliente: N of them)"},
    {"--cliente", 0, TASKCTL_OPT_TEXT, TASKCTL_FIELD(cliente), 0, "PATTERN",
     "judge only the tasks whose cliente matches PATTERN (a shell\n"
     "pattern: \"*@run3\" is run 3 of the classroom); layout, damage\n"
     "and ids are still judged for the whole file; none matching\n"
     "fails (a typo?), unless --expect 0"},
};

static const struct taskctl_option reset_options[] = {
    {"--fsync", 0, TASKCTL_OPT_FLAG, TASKCTL_FIELD(fsync), 0, NULL,
     "make the empty list durable (fdatasync) before reporting it"},
};

static const struct taskctl_option timeline_options[] = {
    {"--output", 'o', TASKCTL_OPT_PATH, TASKCTL_FIELD(output), 0, "FILE",
     "write the picture to FILE (default: standard output)"},
    {"--html", 0, TASKCTL_OPT_FLAG, TASKCTL_FIELD(html), 0, NULL,
     "an HTML page with the same SVG, a legend and the figures"},
    {"--text", 0, TASKCTL_OPT_FLAG, TASKCTL_FIELD(text), 0, NULL,
     "print per-worker figures (lock wait and hold time, wait p50\n"
     "and p99, writes, lost) and the lost tasks; with -o, also draw"},
};

static const struct taskctl_option taskctl_options[] = {
    {"--version", 'V', TASKCTL_OPT_STOP, TASKCTL_FIELD(version), 0, NULL,
     "show the version and whether this build takes locks"},
};

#define OPTIONS(a) .options = a, .num_options = sizeof(a) / sizeof(a[0])

static const struct taskctl_syntax taskctl_syntax = {
    OPTIONS(taskctl_options),
    .operand = "COMMAND",
    .max_operands = -1,
};

static const struct taskctl_syntax add_syntax = {
    .name = "add",
    OPTIONS(add_options),
    .operand = "TITULO",
    .min_operands = 1,
    .max_operands = -1,
    .summary = "add one task per TITULO, print each with its id",
    .text = "Adds one task per TITULO, in order, each under the write lock, and prints each\n"
            "with the id it was given. A TITULO is 1 to 1024 bytes of valid UTF-8; the\n"
            "options apply to every task added and are checked as the server checks them.\n"
            "The first invalid TITULO stops the command with status 2; the ones before it\n"
            "stay added. Creates the file if it does not exist. Use -- before a TITULO\n"
            "that starts with '-'.\n",
};

static const struct taskctl_syntax list_syntax = {
    .name = "list",
    OPTIONS(list_options),
    .summary = "show the tasks as a table, or the JSON array as stored",
    .text = "Shows every task stored so far as a table (id, creada, pid, cliente, seq,\n"
            "titulo) cut to the terminal's width, or 80 columns when not on a terminal.\n"
            "From about 90 columns on it also shows the host of the server that stored each\n"
            "task (COLUMNS=120 taskctl list: several servers on one file).\n"
            "Control characters are shown escaped.\n",
};

static const struct taskctl_syntax verify_syntax = {
    .name = "verify",
    OPTIONS(verify_options),
    .summary = "check layout, ids, every cliente's seq and the count; never writes",
    .text = "Reads the file line by line, without modifying it, and checks: the canonical\n"
            "layout, every record valid JSON, ids unique and increasing, every cliente's\n"
            "seq values 1..max each present exactly once, and the number of tasks.\n"
            "Prints a verdict naming what is damaged, missing or doubled. Exit status 0\n"
            "when everything holds, 1 when something does not, 3 when it cannot read.\n"
            "\n"
            "It also counts the switches between clientes in file order: how interleaved the\n"
            "clients' tasks are.\n",
};

static const struct taskctl_syntax check_syntax = {
    .name = "check",
    .summary = "report what repair would do; never writes",
    .text = "Runs the store's start-up check without repairing: reports the number of\n"
            "tasks and what `taskctl repair` would do. Never writes. Exit status 0 when\n"
            "the file is canonical, 1 when it needs repair or cannot be repaired.\n",
};

static const struct taskctl_syntax repair_syntax = {
    .name = "repair",
    .summary = "cut a torn tail or rewrite another layout (the original is saved)",
    .text = "Repairs the file in place under the write lock, as the server does at\n"
            "start-up: creates a missing file, cuts a torn tail (the cut bytes are saved\n"
            "beside it), rewrites a valid array in another layout in the canonical one\n"
            "(the original is saved beside it). Refuses damage before the tail and\n"
            "leaves the file unchanged (status 3).\n",
};

static const struct taskctl_syntax reset_syntax = {
    .name = "reset",
    OPTIONS(reset_options),
    .summary = "empty the list under the write lock",
    .text = "Empties the list under the write lock: the safe replacement for\n"
            "`echo \"[]\" > tasks.json` while servers run. Creates the file if missing.\n",
};

static const struct taskctl_syntax timeline_syntax = {
    .name = "timeline",
    OPTIONS(timeline_options),
    .operand = "DIR",
    .min_operands = 1,
    .max_operands = 1,
    .summary = "draw the workers' traces (taskserver --trace DIR) as a timeline",
    .text = "Reads the event logs that `taskserver --trace DIR` wrote (DIR/worker-PID.trace, one\n"
            "per worker) and draws them as a timeline: one lane per worker, time to the right;\n"
            "lock waits, lock holds, tail reads and writes (labelled with the task's titulo),\n"
            "and every lost task circled, with an arrow to the write that overwrote it and a\n"
            "line between the two tail reads that saw the same end of the list. The summary\n"
            "says how many tasks were written and lost, and how many lock holds overlapped (0\n"
            "with locks). Does not touch tasks.json (-f is ignored).\n",
    .epilog = "exit status: 0 ok, 2 usage error, 3 a trace cannot be read or the output written\n",
};

static const struct taskctl_syntax help_syntax = {
    .name = "help",
    .operand = "COMMAND",
    .max_operands = 1,
    .summary = "show this text, or a command's",
    .text = "Shows taskctl's help, or with COMMAND that command's (as `taskctl COMMAND --help`).\n",
};

/* ---- add, list ---- */

/* Reports why TITULO k of n was not added. Returns the exit status. */
static int add_failed(const char *path, int k, int n, int invalid, char *err, size_t err_len)
{
    if (invalid) {
        taskctl_ops_error("add: TITULO %d of %d: %s; %d task%s added before it", k + 1, n, err, k,
                          k == 1 ? "" : "s");
        return TASKCTL_EXIT_USAGE;
    }
    int saved = errno;
    if (err[0] == '\0')
        snprintf(err, err_len, "append to %s: %s", path, strerror(saved));
    taskctl_ops_error("%s%s; %d task%s added before the error", err, taskctl_ops_hint(saved), k,
                      k == 1 ? "" : "s");
    return TASKCTL_EXIT_FILE;
}

static int cmd_add(const struct taskctl_args *a)
{
    struct taskctl_ops_fields f = {
        .cliente = a->cliente,
        .descripcion = a->descripcion,
        .seq = a->seq.given ? (int64_t)a->seq.value : -1,
    };
    int n = a->num_positional, rc = TASKCTL_EXIT_OK;
    struct task_store *s = NULL;

    if (f.seq >= 0 && (uint64_t)f.seq + (uint64_t)n - 1 > (uint64_t)TASK_SEQ_MAX) {
        taskctl_ops_error("add: --seq %lld: the last task's seq would pass %lld", (long long)f.seq,
                          (long long)TASK_SEQ_MAX);
        rc = TASKCTL_EXIT_USAGE;
        goto done;
    }
    s = taskctl_ops_open(a->file, TASKCTL_OPEN_WRITE, a->fsync);
    if (s == NULL) {
        rc = TASKCTL_EXIT_FILE;
        goto done;
    }
    for (int k = 0; k < n; k++) {
        char err[TASKCTL_ERR_MAX];
        struct task_meta meta;
        int invalid;
        if (taskctl_ops_add(s, a->positional[k], &f, &meta, &invalid, err, sizeof(err)) < 0) {
            rc = add_failed(a->file, k, n, invalid, err, sizeof(err));
            goto done;
        }
        if (f.seq >= 0)
            f.seq++;
    }
done:
    if (s != NULL)
        task_store_close(s);
    return rc;
}

static int cmd_list(const struct taskctl_args *a)
{
    return taskctl_ops_list(a->file, a->json);
}

/* ---- verify, check, repair, reset ---- */

static int cmd_verify(const struct taskctl_args *a)
{
    struct taskctl_verify_options opts = {
        .has_expect = a->expect.given,
        .expect = a->expect.value,
        .cliente_glob = a->cliente,
    };
    char err[TASKCTL_ERR_MAX] = "";
    int rc = taskctl_verify(a->file, &opts, stdout, err, sizeof(err));
    if (rc < 0) {
        fflush(stdout);
        taskctl_ops_error("%s", err);
        return TASKCTL_EXIT_FILE;
    }
    return rc == 0 ? TASKCTL_EXIT_OK : TASKCTL_EXIT_FAILED;
}

/* The errors that mean "cannot get at the file" rather than "the file is bad". */
static int is_access_error(int err)
{
    return err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM || err == EISDIR ||
           err == ELOOP || err == ENAMETOOLONG || err == EROFS || err == EIO;
}

static int cmd_check(const struct taskctl_args *a)
{
    const char *path = a->file;
    struct task_store_report rep;
    char err[TASKCTL_ERR_MAX] = "";
    struct stat sb;
    /* A missing file is a file error here, not "repair would create it":
     * check is asked about a file the user believes exists. */
    if (stat(path, &sb) < 0) {
        taskctl_ops_error("stat %s: %s", path, strerror(errno));
        return TASKCTL_EXIT_FILE;
    }
    memset(&rep, 0, sizeof(rep));
    if (task_store_check(path, 0, &rep, err, sizeof(err)) < 0) {
        int saved = errno;
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "check %s: %s", path, strerror(saved));
        taskctl_ops_error("%s", err);
        return is_access_error(saved) ? TASKCTL_EXIT_FILE : TASKCTL_EXIT_FAILED;
    }
    if (!rep.created && !rep.canonicalized && !rep.torn_cut) {
        printf("check %s: canonical, %llu tasks\n", path, (unsigned long long)rep.num_tasks);
        return TASKCTL_EXIT_OK;
    }
    if (rep.created)
        printf("check %s: empty file: taskctl repair would write an empty list\n", path);
    if (rep.canonicalized)
        printf("check %s: a valid array in another layout: taskctl repair would rewrite it "
               "in the canonical one (%llu tasks, %llu of them with a new id) and save the "
               "original\n",
               path, (unsigned long long)rep.num_tasks, (unsigned long long)rep.renumbered);
    if (rep.torn_cut)
        printf("check %s: torn tail at byte %lld: taskctl repair would cut %zu bytes and "
               "keep %llu tasks\n",
               path, (long long)rep.torn_offset, rep.torn_bytes, (unsigned long long)rep.num_tasks);
    return TASKCTL_EXIT_FAILED;
}

static int cmd_repair(const struct taskctl_args *a)
{
    const char *path = a->file;
    struct task_store_report rep;
    char err[TASKCTL_ERR_MAX] = "";
    memset(&rep, 0, sizeof(rep));
    if (task_store_check(path, TASK_STORE_REPAIR, &rep, err, sizeof(err)) < 0) {
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "repair %s: %s", path, strerror(errno));
        taskctl_ops_error("%s%s", err, rep.restore_failed ? "" : "; the file was not modified");
        return TASKCTL_EXIT_FILE;
    }
    if (rep.created)
        printf("repair %s: created an empty list\n", path);
    if (rep.canonicalized && rep.saved_path[0] == '\0') /* "[]": nothing worth a copy */
        printf("repair %s: rewrote an empty list in the canonical layout\n", path);
    else if (rep.canonicalized)
        printf("repair %s: rewrote it in the canonical layout, %llu tasks, %llu of them with "
               "a new id (ids are positions, 1..n); the original is saved as %s\n",
               path, (unsigned long long)rep.num_tasks, (unsigned long long)rep.renumbered,
               rep.saved_path);
    if (rep.torn_cut)
        printf("repair %s: cut a torn tail of %zu bytes at byte %lld, %llu tasks kept; the cut "
               "bytes are saved as %s\n",
               path, rep.torn_bytes, (long long)rep.torn_offset, (unsigned long long)rep.num_tasks,
               rep.saved_path);
    if (!rep.created && !rep.canonicalized && !rep.torn_cut)
        printf("repair %s: nothing to repair, %llu tasks\n", path,
               (unsigned long long)rep.num_tasks);
    return TASKCTL_EXIT_OK;
}

static int cmd_reset(const struct taskctl_args *a)
{
    const char *path = a->file;
    char err[TASKCTL_ERR_MAX] = "";
    int rc;
    struct task_store *s = taskctl_ops_open(path, TASKCTL_OPEN_CREATE, a->fsync);
    if (s == NULL)
        return TASKCTL_EXIT_FILE;
    rc = TASKCTL_EXIT_OK;
    if (task_store_reset(s, err, sizeof(err)) < 0) {
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "reset %s: %s", path, strerror(errno));
        taskctl_ops_error("%s", err);
        rc = TASKCTL_EXIT_FILE;
    } else {
        printf("reset %s: the list is empty\n", path);
    }
    task_store_close(s);
    return rc;
}

/* ---- timeline ---- */

static int cmd_timeline(const struct taskctl_args *a)
{
    const char *dir = a->positional[0], *output = a->output;
    int html = a->html, text = a->text, rc;
    char err[TASKCTL_ERR_MAX] = "";
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

static int cmd_help(const struct taskctl_args *a);

struct taskctl_command {
    const struct taskctl_syntax *syntax;
    int (*run)(const struct taskctl_args *a);
};

static const struct taskctl_command commands[] = {
    {&add_syntax, cmd_add},           {&list_syntax, cmd_list},     {&verify_syntax, cmd_verify},
    {&check_syntax, cmd_check},       {&repair_syntax, cmd_repair}, {&reset_syntax, cmd_reset},
    {&timeline_syntax, cmd_timeline}, {&help_syntax, cmd_help},
};

#define TASKCTL_NUM_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct taskctl_command *command_find(const char *name)
{
    for (size_t i = 0; i < TASKCTL_NUM_COMMANDS; i++)
        if (strcmp(commands[i].syntax->name, name) == 0)
            return &commands[i];
    return NULL;
}

/* taskctl --help: the commands with their options, then taskctl's own. */
static void print_overview(FILE *out)
{
    fputs("usage: taskctl [-f FILE] COMMAND [OPTIONS] [ARGS]\n"
          "\n"
          "Reads and writes taskserver's tasks.json directly, under the same locks as the "
          "server.\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < TASKCTL_NUM_COMMANDS; i++) {
        char synopsis[512];
        taskctl_args_synopsis(commands[i].syntax, synopsis, sizeof(synopsis));
        if (strlen(synopsis) < 17)
            fprintf(out, "  %-17s%s\n", synopsis, commands[i].syntax->summary);
        else
            fprintf(out, "  %s\n%19s%s\n", synopsis, "", commands[i].syntax->summary);
    }
    fputs("\n"
          "With no command on a terminal: an interactive menu to add and list tasks.\n"
          "Every command also takes -f FILE and --help.\n"
          "\n"
          "options:\n",
          out);
    taskctl_args_print_options(&taskctl_syntax, out);
    fputs("\nexit status: 0 ok, 1 verification failed, 2 usage error, 3 file error\n", out);
}

static int cmd_help(const struct taskctl_args *a)
{
    if (a->num_positional == 0) {
        print_overview(stdout);
        return TASKCTL_EXIT_OK;
    }
    const struct taskctl_command *topic = command_find(a->positional[0]);
    if (topic == NULL) {
        taskctl_ops_error("help: unknown command \"%s\" (see taskctl --help)", a->positional[0]);
        return TASKCTL_EXIT_USAGE;
    }
    taskctl_args_print_help(topic->syntax, stdout);
    return TASKCTL_EXIT_OK;
}

/* ---- main ---- */

/* Parses taskctl's own options, then the command's, and runs it. */
static int run(int argc, char **argv)
{
    const char *file = getenv("TASKS_FILE");
    struct taskctl_args a = {.file = file != NULL && *file != '\0' ? file : "tasks.json"};
    int rc = taskctl_args_parse(&taskctl_syntax, argc, argv, &a);
    if (rc >= 0) {
        if (a.help)
            print_overview(stdout);
        if (a.version)
            version_print(stdout, "taskctl");
        return rc;
    }
    if (a.num_positional == 0) {
        if (isatty(STDIN_FILENO))
            return taskctl_menu_run(a.file);
        taskctl_ops_error("no command given and stdin is not a terminal (see taskctl --help)");
        return TASKCTL_EXIT_USAGE;
    }
    const struct taskctl_command *c = command_find(a.positional[0]);
    if (c == NULL) {
        taskctl_ops_error("unknown command \"%s\" (see taskctl --help)", a.positional[0]);
        return TASKCTL_EXIT_USAGE;
    }
    struct taskctl_args ca = {.file = a.file};
    rc = taskctl_args_parse(c->syntax, a.num_positional, a.positional, &ca);
    if (rc >= 0) {
        if (ca.help)
            taskctl_args_print_help(c->syntax, stdout);
        return rc;
    }
    return c->run(&ca);
}

int main(int argc, char **argv)
{
    log_init("taskctl");
    version_warn_if_unlocked("taskctl");
    int rc = run(argc, argv);
    if (fflush(stdout) != 0 && rc == TASKCTL_EXIT_OK) {
        taskctl_ops_error("write to stdout: %s", strerror(errno));
        rc = TASKCTL_EXIT_FILE;
    }
    return rc;
}
