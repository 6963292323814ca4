/* taskctl_args.h - taskctl's command lines, parsed and explained from tables of options.
 *
 * Calling sequence:
 *
 *   static const struct taskctl_option add_options[] = {
 *       {"--seq", 0, TASKCTL_OPT_COUNT, TASKCTL_FIELD(seq), TASK_SEQ_MAX, "N", "seq of ..."},
 *   };
 *   static const struct taskctl_syntax add = {.name = "add", .options = add_options,
 *       .num_options = 1, .operand = "TITULO", .min_operands = 1, .max_operands = -1, ...};
 *   struct taskctl_args a = {.file = default_file};
 *   int status = taskctl_args_parse(&add, argc, argv, &a);   (argv[0]: the command's name)
 *   if (status >= 0) exit with it                            (an error was printed, or --help)
 *   if (a.help) taskctl_args_print_help(&add, stdout);
 *   use a.seq, a.positional[0 .. a.num_positional) ...
 *
 * Every command parses the same way: its rows plus -f/--file and -h/--help; options and
 * operands in any order; "--" ends the options; "-" is an operand; "--name VALUE",
 * "--name=VALUE", "-x VALUE" and "-xVALUE"; a flag takes no value. The syntax without a
 * name is taskctl's own, before the command: it stops at the first operand (the command),
 * which a.positional[0] then is.
 *
 * Values point into argv; operands are moved to the front of argv (argv[0] stays):
 * nothing is allocated. Errors are one line, "taskctl: CMD: ...", naming the option or
 * the argument and where to read more, and the status TASKCTL_EXIT_USAGE.
 */
#ifndef TASKSERVER_TASKCTL_ARGS_H
#define TASKSERVER_TASKCTL_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A number given on the command line. */
struct taskctl_count {
    uint64_t value;
    int given;
};

/* Where every option of every command goes; what a command does not take stays zero. */
struct taskctl_args {
    const char *file;            /* -f: the task file */
    int help;                    /* -h: the help was asked for (parsing stopped there) */
    int version;                 /* -V, taskctl's own */
    const char *cliente;         /* add: the cliente field; verify: a pattern of clientes */
    const char *descripcion;     /* add */
    struct taskctl_count seq;    /* add */
    struct taskctl_count expect; /* verify */
    int fsync;                   /* add, reset */
    int json;                    /* list */
    const char *output;          /* timeline -o */
    int html, text;              /* timeline */
    char **positional;           /* the operands, in order */
    int num_positional;
};

#define TASKCTL_FIELD(f) offsetof(struct taskctl_args, f)

/* How an option's text becomes a field. */
enum taskctl_opt_kind {
    TASKCTL_OPT_FLAG,  /* no value: the int field becomes 1 */
    TASKCTL_OPT_STOP,  /* the same, and parsing stops (--help, --version) */
    TASKCTL_OPT_TEXT,  /* any value, the empty one too: a const char * field */
    TASKCTL_OPT_PATH,  /* a non-empty value: a const char * field */
    TASKCTL_OPT_COUNT, /* decimal digits, 0..max: a struct taskctl_count field */
};

/* One row per option. */
struct taskctl_option {
    const char *name; /* the long form, "--seq" */
    char short_name;  /* 'o' for -o, or 0 */
    enum taskctl_opt_kind kind;
    size_t offset;    /* of the field in struct taskctl_args */
    uint64_t max;     /* TASKCTL_OPT_COUNT: the largest value */
    const char *arg;  /* the value's name in the help, NULL for a flag */
    const char *help; /* one line, or several separated by '\n' */
};

/* A command's (or taskctl's own) options, operands and help. */
struct taskctl_syntax {
    const char *name; /* "add"; NULL: taskctl's own options, before the command */
    const struct taskctl_option *options; /* -f and -h are added to these */
    size_t num_options;
    const char *operand; /* its name in the help, "TITULO"; NULL: none allowed */
    int min_operands;
    int max_operands;    /* -1: any number */
    const char *summary; /* a line or two for the command list of taskctl --help */
    const char *text;    /* the paragraphs of its --help, between usage and options */
    const char *epilog;  /* after the options, or NULL */
};

/* Parses argv[1 .. argc) into a, which keeps what it held for options not given.
 * Returns -1 to go on, or an exit status: TASKCTL_EXIT_USAGE after printing the
 * error, TASKCTL_EXIT_OK when a TASKCTL_OPT_STOP option stopped it (a.help or
 * a.version is set; nothing printed). */
int taskctl_args_parse(const struct taskctl_syntax *syn, int argc, char **argv,
                       struct taskctl_args *a);

/* `taskctl CMD --help`: the usage line, the text, the options and the epilog. syn must
 * have a name (taskctl's own help lists the commands: taskctl.c prints it). */
void taskctl_args_print_help(const struct taskctl_syntax *syn, FILE *out);

/* The option rows alone, as in the help ("  -o, --output FILE  write the ..."). */
void taskctl_args_print_options(const struct taskctl_syntax *syn, FILE *out);

/* The command with its options and operands on one line, "list [--json]", into buf. */
void taskctl_args_synopsis(const struct taskctl_syntax *syn, char *buf, size_t cap);

#endif
