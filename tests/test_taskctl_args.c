/* test_taskctl_args.c - taskctl's table-driven command-line parser and help, as tables of
 * command lines with what each must parse to, or the one error line it must print. */
#include "taskctl_args.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskctl_ops.h"

/* A command with a row of every kind, and commands that differ in their operands. */
static const struct taskctl_option t_options[] = {
    {"--flag", 0, TASKCTL_OPT_FLAG, TASKCTL_FIELD(json), 0, NULL, "a flag"},
    {"--text", 't', TASKCTL_OPT_TEXT, TASKCTL_FIELD(cliente), 0, "TEXT", "any text"},
    {"--path", 'p', TASKCTL_OPT_PATH, TASKCTL_FIELD(output), 0, "PATH", "a path\non two lines"},
    {"--count", 0, TASKCTL_OPT_COUNT, TASKCTL_FIELD(seq), 10, "N", "0 to 10"},
    {"--big", 0, TASKCTL_OPT_COUNT, TASKCTL_FIELD(expect), UINT64_MAX, "N", "any count"},
};
static const struct taskctl_option top_options[] = {
    {"--version", 'V', TASKCTL_OPT_STOP, TASKCTL_FIELD(version), 0, NULL, "the version"},
};

enum { T, ONE, NONE, OPT, TOP };

static const struct taskctl_syntax syntaxes[] = {
    [T] = {"t", t_options, sizeof(t_options) / sizeof(t_options[0]), "ARG", 0, -1, "t does",
           "T's text.\n", "t's epilog\n"},
    [ONE] = {"one", NULL, 0, "DIR", 1, 1, "one does", "One's text.\n", NULL},
    [NONE] = {"none", NULL, 0, NULL, 0, 0, "none does", "None's text.\n", NULL},
    [OPT] = {"opt", NULL, 0, "COMMAND", 0, 1, "opt does", "Opt's text.\n", NULL},
    [TOP] = {NULL, top_options, 1, "COMMAND", 0, -1, NULL, NULL, NULL},
};

static const struct args_case {
    int syntax;
    const char *argv; /* words after the command's name, '|' between them */
    const char *expected;
} args_cases[] = {
    /* operands and options in any order */
    {T, "", "go file=F"},
    {T, "a|b", "go file=F pos=a,b"},
    {T, "--flag|a", "go file=F flag pos=a"},
    {T, "a|--flag|b", "go file=F flag pos=a,b"},
    {T, "-|a", "go file=F pos=-,a"},
    {T, "--|--flag|-x|--", "go file=F pos=--flag,-x,--"},
    {T, "a|--|b", "go file=F pos=a,b"},
    /* the four spellings of a value */
    {T, "--text|x", "go file=F text=x"},
    {T, "--text=x", "go file=F text=x"},
    {T, "-t|x", "go file=F text=x"},
    {T, "-tx", "go file=F text=x"},
    {T, "--text=a=b", "go file=F text=a=b"},
    {T, "--text=", "go file=F text="},
    {T, "--text|", "go file=F text="},
    {T, "--text|--flag", "go file=F text=--flag"},
    {T, "--text|a|--text|b", "go file=F text=b"},
    {T, "--text", "error t: --text needs a value (see taskctl t --help)"},
    /* paths */
    {T, "-p|out", "go file=F path=out"},
    {T, "-pout", "go file=F path=out"},
    {T, "--path=", "error t: --path needs a non-empty path (see taskctl t --help)"},
    {T, "-p|", "error t: --path needs a non-empty path (see taskctl t --help)"},
    /* counts */
    {T, "--count|0", "go file=F count=0"},
    {T, "--count|10", "go file=F count=10"},
    {T, "--count=007", "go file=F count=7"},
    {T, "--count|11",
     "error t: --count \"11\": must be an integer from 0 to 10 (see taskctl t --help)"},
    {T, "--count|-1",
     "error t: --count \"-1\": must be an integer from 0 to 10 (see taskctl t --help)"},
    {T, "--count|+1",
     "error t: --count \"+1\": must be an integer from 0 to 10 (see taskctl t --help)"},
    {T, "--count| 1",
     "error t: --count \" 1\": must be an integer from 0 to 10 (see taskctl t --help)"},
    {T, "--count|1x",
     "error t: --count \"1x\": must be an integer from 0 to 10 (see taskctl t --help)"},
    {T, "--count|",
     "error t: --count \"\": must be an integer from 0 to 10 (see taskctl t --help)"},
    {T, "--big|18446744073709551615", "go file=F big=18446744073709551615"},
    {T, "--big|18446744073709551616",
     "error t: --big \"18446744073709551616\": must be a non-negative integer (see taskctl t "
     "--help)"},
    /* flags */
    {T, "--flag=1", "error t: --flag takes no value (see taskctl t --help)"},
    {T, "--help=1", "error t: --help takes no value (see taskctl t --help)"},
    {T, "-hx", "error t: unknown option -hx (see taskctl t --help)"},
    /* unknown options */
    {T, "--frob", "error t: unknown option --frob (see taskctl t --help)"},
    {T, "--frob=1", "error t: unknown option --frob=1 (see taskctl t --help)"},
    {T, "-x", "error t: unknown option -x (see taskctl t --help)"},
    {T, "--fla", "error t: unknown option --fla (see taskctl t --help)"},
    {T, "--flagx", "error t: unknown option --flagx (see taskctl t --help)"},
    /* -f and -h everywhere */
    {T, "-f|a|--file|b", "go file=b"},
    {T, "-fa", "go file=a"},
    {T, "--file=a|x", "go file=a pos=x"},
    {T, "--file=", "error t: --file needs a non-empty path (see taskctl t --help)"},
    {T, "-f", "error t: --file needs a value (see taskctl t --help)"},
    {T, "--help|--frob", "stop file=F help"},
    {T, "a|-h", "stop file=F help"},
    {T, "--frob|--help", "error t: unknown option --frob (see taskctl t --help)"},
    {NONE, "-h", "stop file=F help"},
    /* operand counts */
    {ONE, "", "error one: no DIR given (see taskctl one --help)"},
    {ONE, "d", "go file=F pos=d"},
    {ONE, "d|e", "error one: unexpected argument \"e\" (see taskctl one --help)"},
    {ONE, "-f|x|d", "go file=x pos=d"},
    {NONE, "", "go file=F"},
    {NONE, "x", "error none: unexpected argument \"x\" (see taskctl none --help)"},
    {NONE, "-", "error none: unexpected argument \"-\" (see taskctl none --help)"},
    {OPT, "", "go file=F"},
    {OPT, "add", "go file=F pos=add"},
    /* taskctl's own options stop at the command */
    {TOP, "", "go file=F"},
    {TOP, "list|--json|x", "go file=F pos=list,--json,x"},
    {TOP, "-f|x|list|-f|y", "go file=x pos=list,-f,y"},
    {TOP, "--|list", "go file=F pos=list"},
    {TOP, "-V|--frob", "stop file=F version"},
    {TOP, "-V1", "error unknown option -V1 (see taskctl --help)"},
    {TOP, "--json|list", "error unknown option --json (see taskctl --help)"},
    {TOP, "-f", "error --file needs a value (see taskctl --help)"},
};

/* What a parse gave, in the words of the expected column. */
static void describe(int status, const struct taskctl_args *a, const char *err, char *out,
                     size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "%s", status < 0 ? "go" : status == 0 ? "stop" : "");
    if (status > 0) {
        snprintf(out, cap, "%s%s", status == TASKCTL_EXIT_USAGE ? "error " : "status? ", err);
        return;
    }
    len += (size_t)snprintf(out + len, cap - len, " file=%s%s%s%s", a->file, a->help ? " help" : "",
                            a->version ? " version" : "", a->json ? " flag" : "");
    if (a->cliente != NULL)
        len += (size_t)snprintf(out + len, cap - len, " text=%s", a->cliente);
    if (a->output != NULL)
        len += (size_t)snprintf(out + len, cap - len, " path=%s", a->output);
    if (a->seq.given)
        len +=
            (size_t)snprintf(out + len, cap - len, " count=%llu", (unsigned long long)a->seq.value);
    if (a->expect.given)
        len += (size_t)snprintf(out + len, cap - len, " big=%llu",
                                (unsigned long long)a->expect.value);
    for (int i = 0; status < 0 && i < a->num_positional && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : " pos=", a->positional[i]);
}

/* Runs the parser with stderr in a file; the error line, without "taskctl: " and newline,
 * goes to err. */
static int parse_capturing(const struct taskctl_syntax *syn, int argc, char **argv,
                           struct taskctl_args *a, char *err, size_t cap)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(f), STDERR_FILENO), 0);
    int status = taskctl_args_parse(syn, argc, argv, a);
    fflush(stderr);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    rewind(f);
    char line[1024] = "";
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    line[n] = '\0';
    fclose(f);
    ck_assert_msg(status > 0 ? n > 0 && strchr(line, '\n') == line + n - 1 : n == 0,
                  "status %d with stderr \"%s\": expected one line exactly on an error", status,
                  line);
    if (n > 0)
        line[n - 1] = '\0';
    ck_assert_msg(n == 0 || strncmp(line, "taskctl: ", 9) == 0, "stderr: %s", line);
    snprintf(err, cap, "%s", n > 0 ? line + 9 : "");
    return status;
}

START_TEST(test_parse)
{
    const struct args_case *c = &args_cases[_i];
    const struct taskctl_syntax *syn = &syntaxes[c->syntax];
    char words[256], *argv[16], err[1024], got[2048];
    int argc = 0;
    snprintf(words, sizeof(words), "%s", c->argv);
    argv[argc++] = (char *)(syn->name != NULL ? syn->name : "taskctl");
    for (char *w = words; c->argv[0] != '\0' && argc < 15;) {
        char *bar = strchr(w, '|');
        argv[argc++] = w;
        if (bar == NULL)
            break;
        *bar = '\0';
        w = bar + 1;
    }
    argv[argc] = NULL;
    struct taskctl_args a = {.file = "F"};
    int status = parse_capturing(syn, argc, argv, &a, err, sizeof(err));
    describe(status, &a, err, got, sizeof(got));
    ck_assert_msg(strcmp(got, c->expected) == 0, "%s \"%s\": expected %s, got %s",
                  syn->name ? syn->name : "taskctl", c->argv, c->expected, got);
}
END_TEST

/* --help shows the usage line and every row with its help, -f and -h included. */
START_TEST(test_help_lists_rows)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    taskctl_args_print_help(&syntaxes[T], out);
    fclose(out);
    static const char *const want[] = {
        "usage: taskctl [-f FILE] t [--flag] [-t TEXT] [-p PATH] [--count N] [--big N] [--] "
        "ARG...\n\nT's text.\n\noptions:\n",
        "\n  --flag           a flag\n",
        "\n  -t, --text TEXT  any text\n",
        "\n  -p, --path PATH  a path\n                   on two lines\n",
        "\n  --count N        0 to 10\n",
        "\n  --big N          any count\n",
        "\n  -f, --file FILE  the task file",
        "\n  -h, --help       show this help and exit\n\nt's epilog\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "expected [%s] in [%s]", want[i], text);
    free(text);
}
END_TEST

START_TEST(test_synopsis)
{
    static const char *const want[] = {
        [T] = "t [--flag] [-t TEXT] [-p PATH] [--count N] [--big N] [--] ARG...",
        [ONE] = "one DIR",
        [NONE] = "none",
        [OPT] = "opt [COMMAND]",
    };
    for (int i = T; i <= OPT; i++) {
        char got[256];
        taskctl_args_synopsis(&syntaxes[i], got, sizeof(got));
        ck_assert_msg(strcmp(got, want[i]) == 0, "expected %s, got %s", want[i], got);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("taskctl_args");
    TCase *tc = tcase_create("tables");
    tcase_add_loop_test(tc, test_parse, 0, (int)(sizeof(args_cases) / sizeof(args_cases[0])));
    tcase_add_test(tc, test_help_lists_rows);
    tcase_add_test(tc, test_synopsis);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
