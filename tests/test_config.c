/* test_config.c - config_parse(): flags, environment, precedence and every rejection, as tables. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define MAX_ARGS 8
#define MAX_ENV 4

/* A fake environment: config_parse() must read nothing but what the case gives it. */
struct env_var {
    const char *name;
    const char *value;
};

static const struct env_var *test_env;

static const char *test_getenv(const char *name)
{
    for (const struct env_var *e = test_env; e != NULL && e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

/* Runs config_parse on a NULL-terminated argument list (program name added). */
static int run_parse(struct config *cfg, const char *const *args, const struct env_var *env)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)"taskserver";
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        ck_assert_int_lt(argc, MAX_ARGS + 1);
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    test_env = env;
    return config_parse(cfg, argc, argv, test_getenv);
}

/* A field of struct config read as a number, by its flag name. */
static uint64_t field_num(const struct config *c, const char *flag)
{
    static const struct {
        const char *flag;
        size_t offset;
        size_t size;
    } map[] = {
#define F(name, f) {name, offsetof(struct config, f), sizeof(((struct config *)0)->f)}
        F("port", port),
        F("workers", workers),
        F("fsync", fsync),
        F("race-window-us", race_window_us),
        F("lock-timeout", lock_timeout_ms),
        F("max-body", max_body),
        F("max-connections", max_connections),
        F("max-request-line", max_request_line),
        F("max-header-bytes", max_header_bytes),
        F("max-headers", max_headers),
        F("header-timeout", header_timeout_ms),
        F("body-timeout", body_timeout_ms),
        F("keepalive-timeout", keepalive_timeout_ms),
        F("send-timeout", send_timeout_ms),
        F("grace", grace_ms),
        F("quiet", quiet),
        F("trace-max-events", trace_max_events),
#undef F
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].flag, flag) != 0)
            continue;
        const char *p = (const char *)c + map[i].offset;
        if (map[i].size == sizeof(size_t)) {
            size_t z;
            memcpy(&z, p, sizeof(z));
            return z;
        }
        if (map[i].size == sizeof(unsigned)) {
            unsigned u;
            memcpy(&u, p, sizeof(u));
            return u;
        }
    }
    ck_abort_msg("no numeric field for %s", flag);
    return 0;
}

/* ---- defaults ---- */

START_TEST(test_defaults)
{
    struct config c;
    static const struct {
        const char *flag;
        uint64_t value;
    } expect[] = {
        {"port", 9000},
        {"fsync", 0},
        {"race-window-us", 0},
        {"lock-timeout", 5000},
        {"max-body", 65536},
        {"max-connections", 0}, /* from the open file limit, at start */
        {"max-request-line", 8192},
        {"max-header-bytes", 16384},
        {"max-headers", 100},
        {"header-timeout", 10000},
        {"body-timeout", 10000},
        {"keepalive-timeout", 5000},
        {"send-timeout", 30000},
        {"grace", 10000},
        {"quiet", 0},
        {"trace-max-events", 100000},
    };
    ck_assert_int_eq(run_parse(&c, NULL, NULL), 0);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        ck_assert_msg(field_num(&c, expect[i].flag) == expect[i].value,
                      "default %s: expected %llu, got %llu", expect[i].flag,
                      (unsigned long long)expect[i].value,
                      (unsigned long long)field_num(&c, expect[i].flag));
    ck_assert_str_eq(c.bind, "0.0.0.0");
    ck_assert_str_eq(c.file, "tasks.json");
    ck_assert_str_eq(c.trace_dir, "");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_uint_eq(c.workers, cpus < 1 ? 1 : cpus > 1024 ? 1024 : (unsigned)cpus);
}
END_TEST

/* ---- valid values: flag forms and environment ---- */

struct valid_case {
    const char *args[MAX_ARGS];
    struct env_var env[MAX_ENV];
    const char *field; /* flag name of the numeric field to check, or "bind"/"file"/"trace" */
    uint64_t num;
    const char *str;
    const char *desc;
};

static const struct valid_case valid_cases[] = {
    {{"--port", "8080"}, {{0}}, "port", 8080, NULL, "--flag value"},
    {{"--port=8081"}, {{0}}, "port", 8081, NULL, "--flag=value"},
    {{"--port", "0"}, {{0}}, "port", 0, NULL, "port 0 picks a free port"},
    {{"--port", "65535"}, {{0}}, "port", 65535, NULL, "port upper bound"},
    {{"--port", "007"}, {{0}}, "port", 7, NULL, "leading zeros are digits"},
    {{"--port", "1", "--port", "2"}, {{0}}, "port", 2, NULL, "last flag wins"},
    {{"--workers", "1"}, {{0}}, "workers", 1, NULL, "workers lower bound"},
    {{"--workers=1024"}, {{0}}, "workers", 1024, NULL, "workers upper bound"},
    {{"--fsync"}, {{0}}, "fsync", 1, NULL, "boolean flag without value"},
    {{"--fsync=no"}, {{0}}, "fsync", 0, NULL, "boolean flag =no"},
    {{"--fsync=TRUE"}, {{0}}, "fsync", 1, NULL, "boolean flag =TRUE"},
    {{"--quiet", "--fsync"}, {{0}}, "quiet", 1, NULL, "boolean flag does not eat the next"},
    {{"--quiet", "--fsync"}, {{0}}, "fsync", 1, NULL, "the next flag still counts"},
    {{"--race-window-us", "250"}, {{0}}, "race-window-us", 250, NULL, "race window"},
    {{"--lock-timeout", "0"}, {{0}}, "lock-timeout", 0, NULL, "lock timeout 0 = forever"},
    {{"--lock-timeout", "0.5"}, {{0}}, "lock-timeout", 500, NULL, "decimal seconds"},
    {{"--lock-timeout=.25"}, {{0}}, "lock-timeout", 250, NULL, "leading dot"},
    {{"--header-timeout", "2.125"}, {{0}}, "header-timeout", 2125, NULL, "three decimals"},
    {{"--header-timeout", "0.001"}, {{0}}, "header-timeout", 1, NULL, "1 ms lower bound"},
    {{"--body-timeout", "3"}, {{0}}, "body-timeout", 3000, NULL, "whole seconds"},
    {{"--keepalive-timeout", "0"}, {{0}}, "keepalive-timeout", 0, NULL, "keep-alive 0"},
    {{"--send-timeout", "3600"}, {{0}}, "send-timeout", 3600000, NULL, "an hour at most"},
    {{"--grace", "0"}, {{0}}, "grace", 0, NULL, "no grace"},
    {{"--grace=1.5"}, {{0}}, "grace", 1500, NULL, "grace 1.5 s"},
    {{"--max-body", "0"}, {{0}}, "max-body", 0, NULL, "max body 0"},
    {{"--max-body", "1073741824"}, {{0}}, "max-body", 1073741824, NULL, "max body 1 GiB"},
    {{"--max-connections", "1"}, {{0}}, "max-connections", 1, NULL, "one connection"},
    {{"--max-request-line", "16"}, {{0}}, "max-request-line", 16, NULL, "request line min"},
    {{"--max-header-bytes", "65536"}, {{0}}, "max-header-bytes", 65536, NULL, "header bytes"},
    {{"--max-headers", "128"}, {{0}}, "max-headers", 128, NULL, "header count cap"},
    {{"--bind", "127.0.0.1"}, {{0}}, "bind", 0, "127.0.0.1", "IPv4"},
    {{"--bind=::1"}, {{0}}, "bind", 0, "::1", "IPv6"},
    {{"--bind", "::"}, {{0}}, "bind", 0, "::", "IPv6 any"},
    {{"--file", "/data/tasks.json"}, {{0}}, "file", 0, "/data/tasks.json", "file"},
    {{"--file=a=b.json"}, {{0}}, "file", 0, "a=b.json", "only the first = splits"},
    {{"--file", "--quiet"}, {{0}}, "file", 0, "--quiet", "a valued flag takes the next arg"},
    {{"--trace", "/tmp/tr"}, {{0}}, "trace", 0, "/tmp/tr", "trace directory"},
    {{"--trace-max-events", "1"}, {{0}}, "trace-max-events", 1, NULL, "trace cap lower bound"},
    /* environment */
    {{0}, {{"TASKSERVER_PORT", "9100"}}, "port", 9100, NULL, "env port"},
    {{0}, {{"TASKSERVER_WORKERS", "3"}}, "workers", 3, NULL, "env workers"},
    {{0}, {{"TASKSERVER_FILE", "/x/t.json"}}, "file", 0, "/x/t.json", "env file"},
    {{0}, {{"TASKSERVER_TRACE", "tr"}}, "trace", 0, "tr", "env trace"},
    {{0}, {{"TASKSERVER_TRACE_MAX_EVENTS", "50"}}, "trace-max-events", 50, NULL, "env cap"},
    {{0}, {{"TASKSERVER_BIND", "::1"}}, "bind", 0, "::1", "env bind"},
    {{0}, {{"TASKSERVER_RACE_WINDOW_US", "7"}}, "race-window-us", 7, NULL, "dashes -> _"},
    {{0}, {{"TASKSERVER_LOCK_TIMEOUT", "1.5"}}, "lock-timeout", 1500, NULL, "env seconds"},
    {{0}, {{"TASKSERVER_MAX_BODY", "1024"}}, "max-body", 1024, NULL, "env max body"},
    {{0}, {{"TASKSERVER_KEEPALIVE_TIMEOUT", "1"}}, "keepalive-timeout", 1000, NULL, "env ka"},
    {{0}, {{"TASKSERVER_SEND_TIMEOUT", "2"}}, "send-timeout", 2000, NULL, "env send"},
    {{0}, {{"TASKSERVER_MAX_HEADERS", "5"}}, "max-headers", 5, NULL, "env max headers"},
    {{0}, {{"TASKSERVER_GRACE", "0.2"}}, "grace", 200, NULL, "env grace"},
    {{0}, {{"TASKSERVER_FSYNC", "1"}}, "fsync", 1, NULL, "env bool 1"},
    {{0}, {{"TASKSERVER_FSYNC", "yes"}}, "fsync", 1, NULL, "env bool yes"},
    {{0}, {{"TASKSERVER_FSYNC", "true"}}, "fsync", 1, NULL, "env bool true"},
    {{0}, {{"TASKSERVER_QUIET", "0"}}, "quiet", 0, NULL, "env bool 0"},
    {{0}, {{"TASKSERVER_QUIET", "No"}}, "quiet", 0, NULL, "env bool No"},
    {{0}, {{"TASKSERVER_QUIET", "false"}}, "quiet", 0, NULL, "env bool false"},
    {{0}, {{"TASKSERVER_PORT", ""}}, "port", 9000, NULL, "empty variable = unset"},
    {{0}, {{"taskserver_port", "1"}}, "port", 9000, NULL, "names are upper case"},
    /* precedence: flag > environment > default */
    {{"--port", "1"}, {{"TASKSERVER_PORT", "2"}}, "port", 1, NULL, "flag wins over env"},
    {{"--port", "1"}, {{"TASKSERVER_PORT", "junk"}}, "port", 1, NULL, "overridden env unchecked"},
    {{"--fsync=0"}, {{"TASKSERVER_FSYNC", "1"}}, "fsync", 0, NULL, "bool flag wins over env"},
    {{"--workers", "2"}, {{"TASKSERVER_PORT", "2"}}, "port", 2, NULL, "env for another field"},
    {{"--file", "a"}, {{"TASKSERVER_FILE", "b"}}, "file", 0, "a", "file flag wins"},
};

START_TEST(test_valid)
{
    const struct valid_case *tc = &valid_cases[_i];
    struct config c;
    int rc = run_parse(&c, tc->args, tc->env);
    ck_assert_msg(rc == 0, "%s: expected rc 0, got %d", tc->desc, rc);
    if (strcmp(tc->field, "bind") == 0 || strcmp(tc->field, "file") == 0 ||
        strcmp(tc->field, "trace") == 0) {
        const char *got = strcmp(tc->field, "bind") == 0   ? c.bind
                          : strcmp(tc->field, "file") == 0 ? c.file
                                                           : c.trace_dir;
        ck_assert_msg(strcmp(got, tc->str) == 0, "%s: expected \"%s\", got \"%s\"", tc->desc,
                      tc->str, got);
    } else {
        uint64_t got = field_num(&c, tc->field);
        ck_assert_msg(got == tc->num, "%s: %s expected %llu, got %llu", tc->desc, tc->field,
                      (unsigned long long)tc->num, (unsigned long long)got);
    }
}
END_TEST

/* ---- invalid input: -1 and exactly one line naming the flag or variable ---- */

struct invalid_case {
    const char *args[MAX_ARGS];
    struct env_var env[MAX_ENV];
    const char *message; /* the whole expected stderr line, without newline */
};

static const struct invalid_case invalid_cases[] = {
    {{"--trace-max-events", "0"},
     {{0}},
     "taskserver: invalid value for --trace-max-events: \"0\" (expected 1..100000000)"},
    {{"--port", "abc"}, {{0}}, "taskserver: invalid value for --port: \"abc\" (expected 0..65535)"},
    {{"--port", "65536"},
     {{0}},
     "taskserver: invalid value for --port: \"65536\" (expected 0..65535)"},
    {{"--port", "-1"}, {{0}}, "taskserver: invalid value for --port: \"-1\" (expected 0..65535)"},
    {{"--port", "+80"}, {{0}}, "taskserver: invalid value for --port: \"+80\" (expected 0..65535)"},
    {{"--port", " 80"}, {{0}}, "taskserver: invalid value for --port: \" 80\" (expected 0..65535)"},
    {{"--port", "80 "}, {{0}}, "taskserver: invalid value for --port: \"80 \" (expected 0..65535)"},
    {{"--port", "80x"}, {{0}}, "taskserver: invalid value for --port: \"80x\" (expected 0..65535)"},
    {{"--port", "0x50"},
     {{0}},
     "taskserver: invalid value for --port: \"0x50\" (expected 0..65535)"},
    {{"--port", "1e3"}, {{0}}, "taskserver: invalid value for --port: \"1e3\" (expected 0..65535)"},
    {{"--port="}, {{0}}, "taskserver: invalid value for --port: \"\" (expected 0..65535)"},
    {{"--port", "99999999999999999999999"},
     {{0}},
     "taskserver: invalid value for --port: \"99999999999999999999999\" (expected 0..65535)"},
    {{"--port"}, {{0}}, "taskserver: option --port needs a value (try taskserver --help)"},
    {{"--workers", "0"},
     {{0}},
     "taskserver: invalid value for --workers: \"0\" (expected 1..1024)"},
    {{"--workers", "1025"},
     {{0}},
     "taskserver: invalid value for --workers: \"1025\" (expected 1..1024)"},
    {{"--workers", "2.5"},
     {{0}},
     "taskserver: invalid value for --workers: \"2.5\" (expected 1..1024)"},
    {{"--race-window-us", "10000001"},
     {{0}},
     "taskserver: invalid value for --race-window-us: \"10000001\" (expected 0..10000000)"},
    {{"--max-body", "1073741825"},
     {{0}},
     "taskserver: invalid value for --max-body: \"1073741825\" (expected 0..1073741824)"},
    {{"--max-body", "64k"},
     {{0}},
     "taskserver: invalid value for --max-body: \"64k\" (expected 0..1073741824)"},
    {{"--max-connections", "1048577"},
     {{0}},
     "taskserver: invalid value for --max-connections: \"1048577\" (expected 0..1048576)"},
    {{"--max-request-line", "15"},
     {{0}},
     "taskserver: invalid value for --max-request-line: \"15\" (expected 16..1048576)"},
    {{"--max-header-bytes", "63"},
     {{0}},
     "taskserver: invalid value for --max-header-bytes: \"63\" (expected 64..1048576)"},
    {{"--max-headers", "129"},
     {{0}},
     "taskserver: invalid value for --max-headers: \"129\" (expected 1..128)"},
    {{"--max-headers", "0"},
     {{0}},
     "taskserver: invalid value for --max-headers: \"0\" (expected 1..128)"},
    {{"--lock-timeout", "-1"},
     {{0}},
     "taskserver: invalid value for --lock-timeout: \"-1\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{"--lock-timeout", "3600.001"},
     {{0}},
     "taskserver: invalid value for --lock-timeout: \"3600.001\" (expected seconds 0..3600, up "
     "to 3 decimals)"},
    {{"--grace", "0.0005"},
     {{0}},
     "taskserver: invalid value for --grace: \"0.0005\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{"--grace", "1."},
     {{0}},
     "taskserver: invalid value for --grace: \"1.\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{"--grace", "."},
     {{0}},
     "taskserver: invalid value for --grace: \".\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{"--grace", "1.2.3"},
     {{0}},
     "taskserver: invalid value for --grace: \"1.2.3\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{"--grace", "5s"},
     {{0}},
     "taskserver: invalid value for --grace: \"5s\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{"--header-timeout", "0"},
     {{0}},
     "taskserver: invalid value for --header-timeout: \"0\" (expected seconds 0.001..3600, up "
     "to 3 decimals)"},
    {{"--body-timeout", "0.000"},
     {{0}},
     "taskserver: invalid value for --body-timeout: \"0.000\" (expected seconds 0.001..3600, up "
     "to 3 decimals)"},
    {{"--send-timeout", "0"},
     {{0}},
     "taskserver: invalid value for --send-timeout: \"0\" (expected seconds 0.001..3600, up to 3 "
     "decimals)"},
    {{"--keepalive-timeout", "3601"},
     {{0}},
     "taskserver: invalid value for --keepalive-timeout: \"3601\" (expected seconds 0..3600, up "
     "to 3 decimals)"},
    {{"--fsync=maybe"},
     {{0}},
     "taskserver: invalid value for --fsync: \"maybe\" (expected 1, 0, true, false, yes or no)"},
    {{"--quiet="},
     {{0}},
     "taskserver: invalid value for --quiet: \"\" (expected 1, 0, true, false, yes or no)"},
    {{"--bind", "localhost"},
     {{0}},
     "taskserver: invalid value for --bind: \"localhost\" (expected a numeric IPv4 or IPv6 "
     "address)"},
    {{"--bind", "1.2.3"},
     {{0}},
     "taskserver: invalid value for --bind: \"1.2.3\" (expected a numeric IPv4 or IPv6 "
     "address)"},
    {{"--bind", "256.0.0.1"},
     {{0}},
     "taskserver: invalid value for --bind: \"256.0.0.1\" (expected a numeric IPv4 or IPv6 "
     "address)"},
    {{"--file", ""},
     {{0}},
     "taskserver: invalid value for --file: \"\" (expected a path of 1..4095 bytes)"},
    {{"--nope"}, {{0}}, "taskserver: unknown option --nope (try taskserver --help)"},
    {{"--nope=1"}, {{0}}, "taskserver: unknown option --nope (try taskserver --help)"},
    {{"-p", "80"}, {{0}}, "taskserver: unexpected argument \"-p\" (try taskserver --help)"},
    {{"tasks.json"},
     {{0}},
     "taskserver: unexpected argument \"tasks.json\" (try taskserver --help)"},
    {{"--"}, {{0}}, "taskserver: unexpected argument \"--\" (try taskserver --help)"},
    {{"--por", "80"}, {{0}}, "taskserver: unknown option --por (try taskserver --help)"},
    {{"--help=1"}, {{0}}, "taskserver: option --help takes no value"},
    /* environment */
    {{0},
     {{"TASKSERVER_PORT", "abc"}},
     "taskserver: invalid value for TASKSERVER_PORT: \"abc\" (expected 0..65535)"},
    {{0},
     {{"TASKSERVER_WORKERS", "-2"}},
     "taskserver: invalid value for TASKSERVER_WORKERS: \"-2\" (expected 1..1024)"},
    {{0},
     {{"TASKSERVER_FSYNC", "on"}},
     "taskserver: invalid value for TASKSERVER_FSYNC: \"on\" (expected 1, 0, true, false, yes "
     "or no)"},
    {{0},
     {{"TASKSERVER_GRACE", "1,5"}},
     "taskserver: invalid value for TASKSERVER_GRACE: \"1,5\" (expected seconds 0..3600, up to 3 "
     "decimals)"},
    {{0},
     {{"TASKSERVER_BIND", "example.com"}},
     "taskserver: invalid value for TASKSERVER_BIND: \"example.com\" (expected a numeric IPv4 or "
     "IPv6 address)"},
    {{"--port", "80"},
     {{"TASKSERVER_WORKERS", "x"}},
     "taskserver: invalid value for TASKSERVER_WORKERS: \"x\" (expected 1..1024)"},
};

/* Runs fn with stderr (or stdout) sent to a temporary file; returns what was written. */
static char *capture(int target_fd, int (*fn)(const void *), const void *arg, int *rc)
{
    static char buf[16384];
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(NULL);
    int saved = dup(target_fd);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), target_fd), 0);
    *rc = fn(arg);
    fflush(NULL);
    ck_assert_int_ge(dup2(saved, target_fd), 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

static int parse_invalid(const void *arg)
{
    const struct invalid_case *tc = arg;
    struct config c;
    return run_parse(&c, tc->args, tc->env);
}

START_TEST(test_invalid)
{
    const struct invalid_case *tc = &invalid_cases[_i];
    char expected[512];
    int rc;
    const char *err = capture(STDERR_FILENO, parse_invalid, tc, &rc);
    snprintf(expected, sizeof(expected), "%s\n", tc->message);
    ck_assert_msg(rc == -1, "case %d: expected rc -1, got %d", _i, rc);
    ck_assert_msg(strcmp(err, expected) == 0, "case %d:\nexpected: %sgot:      %s", _i, expected,
                  err);
}
END_TEST

/* ---- --help and --version ---- */

static int parse_args(const void *arg)
{
    struct config c;
    return run_parse(&c, arg, NULL);
}

START_TEST(test_help)
{
    static const char *const args[] = {"--port", "junk", "--help", NULL};
    static const char *const lines[] = {
        "--port N",
        "default 9000; env TASKSERVER_PORT",
        "--bind ADDR",
        "default 0.0.0.0; env TASKSERVER_BIND",
        "--workers N",
        "env TASKSERVER_WORKERS",
        "--file PATH",
        "default tasks.json; env TASKSERVER_FILE",
        "--fsync",
        "default off; env TASKSERVER_FSYNC",
        "--race-window-us N",
        "default 0; env TASKSERVER_RACE_WINDOW_US",
        "--lock-timeout S",
        "default 5 s; env TASKSERVER_LOCK_TIMEOUT",
        "--max-body BYTES",
        "default 65536; env TASKSERVER_MAX_BODY",
        "--max-connections N",
        "default 0; env TASKSERVER_MAX_CONNECTIONS",
        "--max-request-line BYTES",
        "default 8192; env TASKSERVER_MAX_REQUEST_LINE",
        "--max-header-bytes BYTES",
        "default 16384; env TASKSERVER_MAX_HEADER_BYTES",
        "--max-headers N",
        "default 100; env TASKSERVER_MAX_HEADERS",
        "--header-timeout S",
        "default 10 s; env TASKSERVER_HEADER_TIMEOUT",
        "--body-timeout S",
        "default 10 s; env TASKSERVER_BODY_TIMEOUT",
        "--keepalive-timeout S",
        "default 5 s; env TASKSERVER_KEEPALIVE_TIMEOUT",
        "--send-timeout S",
        "default 30 s; env TASKSERVER_SEND_TIMEOUT",
        "--grace S",
        "default 10 s; env TASKSERVER_GRACE",
        "--quiet",
        "default off; env TASKSERVER_QUIET",
        "--trace DIR",
        "default off; env TASKSERVER_TRACE",
        "--trace-max-events N",
        "default 100000; env TASKSERVER_TRACE_MAX_EVENTS",
        "--version",
        "--help",
    };
    int rc;
    const char *out = capture(STDOUT_FILENO, parse_args, args, &rc);
    ck_assert_int_eq(rc, 1);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        ck_assert_msg(strstr(out, lines[i]) != NULL, "--help lacks \"%s\":\n%s", lines[i], out);
}
END_TEST

START_TEST(test_version)
{
    static const char *const args[] = {"--version", NULL};
    int rc;
    const char *out = capture(STDOUT_FILENO, parse_args, args, &rc);
    ck_assert_int_eq(rc, 1);
    const char *locking = getenv("LOCKING");
    const char *want = locking != NULL && strcmp(locking, "0") == 0
                           ? "taskserver 0.1.0 (locking OFF: loses tasks on purpose)\n"
                           : "taskserver 0.1.0 (locking on)\n";
    ck_assert_str_eq(out, want);
}
END_TEST

/* An unknown flag stops parsing before a later --help. */
START_TEST(test_unknown_before_help)
{
    static const char *const args[] = {"--bogus", "--help", NULL};
    int rc;
    const char *out = capture(STDOUT_FILENO, parse_args, args, &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(out, "");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_defaults);
    tcase_add_loop_test(tc, test_valid, 0, (int)(sizeof(valid_cases) / sizeof(valid_cases[0])));
    tcase_add_loop_test(tc, test_invalid, 0,
                        (int)(sizeof(invalid_cases) / sizeof(invalid_cases[0])));
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_unknown_before_help);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
