/* taskctl_args.c - one parser and one help printer for every taskctl command, driven by rows. */
#include "taskctl_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "taskctl_ops.h"

/* The options every command takes, after its own rows. */
static const struct taskctl_option args_common[] = {
    {"--file", 'f', TASKCTL_OPT_PATH, TASKCTL_FIELD(file), 0, "FILE",
     "the task file (default: $TASKS_FILE, else ./tasks.json)"},
    {"--help", 'h', TASKCTL_OPT_STOP, TASKCTL_FIELD(help), 0, NULL, "show this help and exit"},
};

#define ARGS_NUM_COMMON (sizeof(args_common) / sizeof(args_common[0]))

/* The row at index i of syn's rows followed by the common ones; NULL past the end. */
static const struct taskctl_option *args_row(const struct taskctl_syntax *syn, size_t i)
{
    if (i < syn->num_options)
        return &syn->options[i];
    i -= syn->num_options;
    return i < ARGS_NUM_COMMON ? &args_common[i] : NULL;
}

/* Prints "taskctl: CMD: MESSAGE (see taskctl CMD --help)" and returns TASKCTL_EXIT_USAGE. */
static int args_error(const struct taskctl_syntax *syn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int args_error(const struct taskctl_syntax *syn, const char *fmt, ...)
{
    char msg[TASKCTL_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (syn->name != NULL)
        taskctl_ops_error("%s: %s (see taskctl %s --help)", syn->name, msg, syn->name);
    else
        taskctl_ops_error("%s (see taskctl --help)", msg);
    return TASKCTL_EXIT_USAGE;
}

/* The row named by arg ("--name", "--name=VALUE", "-x", "-xVALUE"), or NULL; *value
 * gets the value written inside arg, or NULL. */
static const struct taskctl_option *args_find(const struct taskctl_syntax *syn, const char *arg,
                                              const char **value)
{
    const struct taskctl_option *o;
    *value = NULL;
    if (arg[1] == '-') {
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        for (size_t i = 0; (o = args_row(syn, i)) != NULL; i++) {
            if (strlen(o->name) == len && memcmp(o->name, arg, len) == 0) {
                *value = eq != NULL ? eq + 1 : NULL;
                return o;
            }
        }
        return NULL;
    }
    for (size_t i = 0; (o = args_row(syn, i)) != NULL; i++) {
        if (o->short_name == 0 || o->short_name != arg[1])
            continue;
        if (arg[2] == '\0')
            return o;
        /* "-oFILE": only an option that takes a value may have it attached. */
        if (o->kind == TASKCTL_OPT_FLAG || o->kind == TASKCTL_OPT_STOP)
            return NULL;
        *value = arg + 2;
        return o;
    }
    return NULL;
}

/* Strict decimal: digits only, no sign, no blanks, no overflow. Returns 0 or -1. */
static int args_parse_count(const char *s, uint64_t max, uint64_t *out)
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

/* Stores value (NULL for a flag) into o's field. Returns -1 to go on, or an exit status. */
static int args_store(const struct taskctl_syntax *syn, const struct taskctl_option *o,
                      const char *value, struct taskctl_args *a)
{
    char *field = (char *)a + o->offset;
    switch (o->kind) {
    case TASKCTL_OPT_FLAG:
    case TASKCTL_OPT_STOP:
        if (value != NULL)
            return args_error(syn, "%s takes no value", o->name);
        *(int *)field = 1;
        return o->kind == TASKCTL_OPT_STOP ? TASKCTL_EXIT_OK : -1;
    case TASKCTL_OPT_PATH:
        if (*value == '\0')
            return args_error(syn, "%s needs a non-empty path", o->name);
        /* fall through */
    case TASKCTL_OPT_TEXT:
        *(const char **)field = value;
        return -1;
    case TASKCTL_OPT_COUNT: {
        struct taskctl_count *c = (struct taskctl_count *)field;
        if (args_parse_count(value, o->max, &c->value) < 0) {
            if (o->max == UINT64_MAX)
                return args_error(syn, "%s \"%s\": must be a non-negative integer", o->name, value);
            return args_error(syn, "%s \"%s\": must be an integer from 0 to %llu", o->name, value,
                              (unsigned long long)o->max);
        }
        c->given = 1;
        return -1;
    }
    }
    return -1;
}

/* Parses the option at argv[*i], moving *i past a separate value. Returns -1 to go on,
 * or an exit status. */
static int args_option(const struct taskctl_syntax *syn, int argc, char **argv, int *i,
                       struct taskctl_args *a)
{
    const char *value;
    const struct taskctl_option *o = args_find(syn, argv[*i], &value);
    if (o == NULL)
        return args_error(syn, "unknown option %s", argv[*i]);
    int takes_value = o->kind != TASKCTL_OPT_FLAG && o->kind != TASKCTL_OPT_STOP;
    if (takes_value && value == NULL) {
        if (*i + 1 >= argc)
            return args_error(syn, "%s needs a value", o->name);
        value = argv[++*i];
    }
    return args_store(syn, o, value, a);
}

int taskctl_args_parse(const struct taskctl_syntax *syn, int argc, char **argv,
                       struct taskctl_args *a)
{
    int num = 0, options_ended = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (options_ended || arg[0] != '-' || arg[1] == '\0') {
            if (syn->name == NULL) {
                /* The command: what follows is its own to parse. */
                a->positional = argv + i;
                a->num_positional = argc - i;
                return -1;
            }
            argv[1 + num++] = arg; /* 1 + num <= i: only entries already read move */
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_ended = 1;
            continue;
        }
        int status = args_option(syn, argc, argv, &i, a);
        if (status >= 0)
            return status;
    }
    a->positional = argv + 1;
    a->num_positional = num;
    if (syn->name == NULL)
        a->num_positional = 0;
    else if (syn->max_operands >= 0 && num > syn->max_operands)
        return args_error(syn, "unexpected argument \"%s\"", argv[1 + syn->max_operands]);
    else if (num < syn->min_operands)
        return args_error(syn, "no %s given", syn->operand);
    return -1;
}

/* "--seq N", "-o, --output FILE" or "--html", for the help. */
static void args_flag_text(const struct taskctl_option *o, char *buf, size_t cap)
{
    char shrt[8] = "";
    if (o->short_name != 0)
        snprintf(shrt, sizeof(shrt), "-%c, ", o->short_name);
    snprintf(buf, cap, "%s%s%s%s", shrt, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

void taskctl_args_print_options(const struct taskctl_syntax *syn, FILE *out)
{
    const struct taskctl_option *o;
    char flag[64];
    int width = 0;
    for (size_t i = 0; (o = args_row(syn, i)) != NULL; i++) {
        args_flag_text(o, flag, sizeof(flag));
        if ((int)strlen(flag) > width)
            width = (int)strlen(flag);
    }
    for (size_t i = 0; (o = args_row(syn, i)) != NULL; i++) {
        args_flag_text(o, flag, sizeof(flag));
        fprintf(out, "  %-*s  ", width, flag);
        for (const char *h = o->help; *h != '\0'; h++) {
            fputc(*h, out);
            if (*h == '\n')
                fprintf(out, "  %-*s  ", width, "");
        }
        fputc('\n', out);
    }
}

void taskctl_args_synopsis(const struct taskctl_syntax *syn, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s", syn->name != NULL ? syn->name : "");
    for (size_t i = 0; i < syn->num_options && len < cap; i++) {
        const struct taskctl_option *o = &syn->options[i];
        char shrt[3] = {'-', o->short_name, '\0'};
        len +=
            (size_t)snprintf(buf + len, cap - len, " [%s%s%s]", o->short_name != 0 ? shrt : o->name,
                             o->arg ? " " : "", o->arg ? o->arg : "");
    }
    if (syn->operand == NULL || len >= cap)
        return;
    if (syn->max_operands < 0)
        snprintf(buf + len, cap - len, " [--] %s...", syn->operand);
    else if (syn->min_operands == 0)
        snprintf(buf + len, cap - len, " [%s]", syn->operand);
    else
        snprintf(buf + len, cap - len, " %s", syn->operand);
}

void taskctl_args_print_help(const struct taskctl_syntax *syn, FILE *out)
{
    static const char prefix[] = "usage: taskctl [-f FILE] ";
    char synopsis[512];
    taskctl_args_synopsis(syn, synopsis, sizeof(synopsis));
    /* Wrapped before 90 columns, between two "[...]", under the command's first option. */
    size_t indent = sizeof(prefix) - 1 + strlen(syn->name) + 1;
    size_t col = sizeof(prefix) - 1;
    fputs(prefix, out);
    for (const char *w = synopsis; *w != '\0';) {
        const char *next = strstr(w + 1, " [");
        size_t n = next != NULL ? (size_t)(next - w) : strlen(w);
        if (w != synopsis && col + n > 90) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
            w++; /* the space */
            n--;
        }
        fwrite(w, 1, n, out);
        col += n;
        w += n;
    }
    fprintf(out, "\n\n%s\noptions:\n", syn->text);
    taskctl_args_print_options(syn, out);
    if (syn->epilog != NULL)
        fprintf(out, "\n%s", syn->epilog);
}
