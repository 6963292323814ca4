/* config.c - taskserver's flags and environment -> one validated struct, before fork. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_limits.h" /* HTTP_MAX_HEADERS_CAP bounds --max-headers; not the parser */
#include "version.h"

#define CONFIG_PROG "taskserver"

/* How an option's text becomes a field. */
enum config_kind {
    CONFIG_UINT,    /* decimal digits -> unsigned or size_t within [min, max] */
    CONFIG_SECONDS, /* seconds, up to 3 decimals ("0.5") -> unsigned milliseconds */
    CONFIG_BOOL,    /* a flag without value; =VALUE or the variable: 1/0/true/false/yes/no */
    CONFIG_ADDR,    /* numeric IPv4 or IPv6 address */
    CONFIG_PATH,    /* non-empty path that fits the field */
    CONFIG_CHOICE,  /* one of the words of arg ("text|json") -> its index, an unsigned */
    CONFIG_ACTION,  /* --help, --version: print and stop; no environment variable */
};

/* One row per flag. The field is found by offset and width so that one parser serves
 * unsigned and size_t fields alike. min/max are in the unit the user types: bytes,
 * counts, or milliseconds for CONFIG_SECONDS. */
struct config_option {
    const char *name; /* without the leading dashes */
    enum config_kind kind;
    size_t offset; /* of the field in struct config */
    size_t size;   /* of the field: sizeof(unsigned), sizeof(size_t), or the buffer */
    uint64_t min;
    uint64_t max;
    const char *arg; /* the value's name in --help */
    const char *help;
};

#define CONFIG_FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct config_option config_options[] = {
    {"port", CONFIG_UINT, CONFIG_FIELD(port), 0, 65535, "N", "TCP port; 0 picks a free one"},
    {"bind", CONFIG_ADDR, CONFIG_FIELD(bind), 0, 0, "ADDR", "numeric IPv4 or IPv6 address"},
    {"workers", CONFIG_UINT, CONFIG_FIELD(workers), 1, 1024, "N", "worker processes"},
    {"file", CONFIG_PATH, CONFIG_FIELD(file), 0, 0, "PATH", "the tasks file (JSON array)"},
    {"fsync", CONFIG_BOOL, CONFIG_FIELD(fsync), 0, 1, NULL,
     "fdatasync tasks.json before answering 201"},
    {"race-window-us", CONFIG_UINT, CONFIG_FIELD(race_window_us), 0, 10000000, "N",
     "sleep inside the locked section (race demo)"},
    {"lock-timeout", CONFIG_SECONDS, CONFIG_FIELD(lock_timeout_ms), 0, 3600000, "S",
     "wait for the file lock, then 503; 0 waits forever"},
    {"max-body", CONFIG_UINT, CONFIG_FIELD(max_body), 0, 1073741824, "BYTES",
     "largest request body (413)"},
    {"max-connections", CONFIG_UINT, CONFIG_FIELD(max_connections), 0, 1048576, "N",
     "open connections per worker (503); 0: the open file limit minus 64"},
    {"max-request-line", CONFIG_UINT, CONFIG_FIELD(max_request_line), 16, 1048576, "BYTES",
     "longest request line (414)"},
    {"max-header-bytes", CONFIG_UINT, CONFIG_FIELD(max_header_bytes), 64, 1048576, "BYTES",
     "largest header section (431)"},
    {"max-headers", CONFIG_UINT, CONFIG_FIELD(max_headers), 1, HTTP_MAX_HEADERS_CAP, "N",
     "most header fields (431)"},
    {"header-timeout", CONFIG_SECONDS, CONFIG_FIELD(header_timeout_ms), 1, 3600000, "S",
     "time to receive the header section (408)"},
    {"body-timeout", CONFIG_SECONDS, CONFIG_FIELD(body_timeout_ms), 1, 3600000, "S",
     "time to receive the body (408)"},
    {"keepalive-timeout", CONFIG_SECONDS, CONFIG_FIELD(keepalive_timeout_ms), 0, 3600000, "S",
     "idle keep-alive connection, then close"},
    {"send-timeout", CONFIG_SECONDS, CONFIG_FIELD(send_timeout_ms), 1, 3600000, "S",
     "a client that stops reading, then close"},
    {"grace", CONFIG_SECONDS, CONFIG_FIELD(grace_ms), 0, 3600000, "S",
     "graceful shutdown time, then SIGKILL"},
    {"quiet", CONFIG_BOOL, CONFIG_FIELD(quiet), 0, 1, NULL, "no log line per stored task"},
    {"trace", CONFIG_PATH, CONFIG_FIELD(trace_dir), 0, 0, "DIR",
     "each worker logs lock, tail and write events to DIR/worker-PID.trace"},
    {"trace-max-events", CONFIG_UINT, CONFIG_FIELD(trace_max_events), 1, 100000000, "N",
     "events per worker trace, then tracing stops"},
    {"log-format", CONFIG_CHOICE, CONFIG_FIELD(log_format), 0, 0, "text|json",
     "log lines as text or as one JSON object each"},
    {"access-log", CONFIG_PATH, CONFIG_FIELD(access_log), 0, 0, "FILE|-",
     "one line per request (common log format + seconds) appended to FILE, - for stdout"},
    {"version", CONFIG_ACTION, 0, 0, 0, 0, NULL, "print the version and exit"},
    {"help", CONFIG_ACTION, 0, 0, 0, 0, NULL, "print this help and exit"},
};

#define CONFIG_NUM_OPTIONS (sizeof(config_options) / sizeof(config_options[0]))

/* The online CPU count, clamped to the --workers range. */
static unsigned config_default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    if (n > 1024)
        return 1024;
    return (unsigned)n;
}

static void config_set_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->bind, "0.0.0.0");
    cfg->port = 9000;
    cfg->workers = config_default_workers();
    strcpy(cfg->file, "tasks.json");
    cfg->fsync = 0;
    cfg->race_window_us = 0;
    cfg->lock_timeout_ms = 5000;
    cfg->max_body = 65536;
    cfg->max_connections = 0; /* from RLIMIT_NOFILE at start (taskserver.c) */
    cfg->max_request_line = 8192;
    cfg->max_header_bytes = 16384;
    cfg->max_headers = 100;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 10000;
    cfg->keepalive_timeout_ms = 5000;
    cfg->send_timeout_ms = 30000;
    cfg->grace_ms = 10000;
    cfg->quiet = 0;
    cfg->trace_dir[0] = '\0';
    cfg->trace_max_events = 100000;
}

/* "race-window-us" -> "TASKSERVER_RACE_WINDOW_US". */
static void config_env_name(const struct config_option *opt, char *out, size_t out_len)
{
    size_t n = (size_t)snprintf(out, out_len, "TASKSERVER_");
    for (const char *p = opt->name; *p != '\0' && n + 1 < out_len; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

/* Strict decimal: digits only, no sign, no blanks, no overflow. Returns 0 or -1. */
static int config_parse_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* "10", "0.5", "2.25", ".5": seconds with at most 3 decimals -> milliseconds. More
 * decimals would silently round, so they are refused instead. */
static int config_parse_seconds(const char *s, uint64_t *ms)
{
    char whole[32];
    const char *dot = strchr(s, '.');
    size_t whole_len = dot != NULL ? (size_t)(dot - s) : strlen(s);
    uint64_t secs = 0;
    uint64_t frac = 0;

    if (whole_len >= sizeof(whole))
        return -1;
    memcpy(whole, s, whole_len);
    whole[whole_len] = '\0';
    if (whole_len > 0 && config_parse_digits(whole, &secs) < 0)
        return -1;
    if (dot != NULL) {
        const char *f = dot + 1;
        size_t f_len = strlen(f);
        if (f_len == 0 || f_len > 3 || config_parse_digits(f, &frac) < 0)
            return -1;
        for (size_t i = f_len; i < 3; i++)
            frac *= 10;
    } else if (whole_len == 0) {
        return -1;
    }
    if (secs > UINT64_MAX / 1000 - 1)
        return -1;
    *ms = secs * 1000 + frac;
    return 0;
}

static int config_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes"};
    static const char *const no[] = {"0", "false", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* The index of word s among the '|'-separated words of choices, or -1. */
static int config_parse_choice(const char *choices, const char *s)
{
    size_t len = strlen(s);
    int i = 0;
    for (const char *p = choices; *p != '\0'; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (n == len && memcmp(p, s, n) == 0)
            return i;
        p += n + (bar != NULL);
    }
    return -1;
}

/* What the user should have typed, for the error message. */
static void config_expected(const struct config_option *opt, char *out, size_t out_len)
{
    switch (opt->kind) {
    case CONFIG_UINT:
        snprintf(out, out_len, "%llu..%llu", (unsigned long long)opt->min,
                 (unsigned long long)opt->max);
        break;
    case CONFIG_SECONDS:
        snprintf(out, out_len, "seconds %llu%s..%llu, up to 3 decimals",
                 (unsigned long long)(opt->min / 1000), opt->min % 1000 != 0 ? ".001" : "",
                 (unsigned long long)(opt->max / 1000));
        break;
    case CONFIG_BOOL:
        snprintf(out, out_len, "1, 0, true, false, yes or no");
        break;
    case CONFIG_ADDR:
        snprintf(out, out_len, "a numeric IPv4 or IPv6 address");
        break;
    case CONFIG_PATH:
        snprintf(out, out_len, "a path of 1..%zu bytes", opt->size - 1);
        break;
    case CONFIG_CHOICE:
        snprintf(out, out_len, "one of %s", opt->arg);
        break;
    case CONFIG_ACTION:
        snprintf(out, out_len, "no value");
        break;
    }
}

/* Stores an integer into an unsigned or size_t field. */
static void config_store_uint(struct config *cfg, const struct config_option *opt, uint64_t v)
{
    char *field = (char *)cfg + opt->offset;
    if (opt->size == sizeof(unsigned)) {
        unsigned u = (unsigned)v;
        memcpy(field, &u, sizeof(u));
    } else {
        size_t z = (size_t)v;
        memcpy(field, &z, sizeof(z));
    }
}

/* Parses text for opt into cfg. source is "--port" or "TASKSERVER_PORT", for the message.
 * Returns 0, or -1 after printing one line to stderr. */
static int config_apply(struct config *cfg, const struct config_option *opt, const char *text,
                        const char *source)
{
    char *field = (char *)cfg + opt->offset;
    uint64_t v = 0;
    int ok = 0;

    switch (opt->kind) {
    case CONFIG_UINT:
        ok = config_parse_digits(text, &v) == 0 && v >= opt->min && v <= opt->max;
        if (ok)
            config_store_uint(cfg, opt, v);
        break;
    case CONFIG_SECONDS:
        ok = config_parse_seconds(text, &v) == 0 && v >= opt->min && v <= opt->max;
        if (ok)
            config_store_uint(cfg, opt, v);
        break;
    case CONFIG_BOOL: {
        int b = 0;
        ok = config_parse_bool(text, &b) == 0;
        if (ok)
            memcpy(field, &b, sizeof(b));
        break;
    }
    case CONFIG_ADDR: {
        unsigned char buf[sizeof(struct in6_addr)];
        ok = strlen(text) < opt->size &&
             (inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1);
        if (ok)
            strcpy(field, text);
        break;
    }
    case CONFIG_PATH:
        ok = text[0] != '\0' && strlen(text) < opt->size;
        if (ok)
            strcpy(field, text);
        break;
    case CONFIG_CHOICE: {
        int idx = config_parse_choice(opt->arg, text);
        ok = idx >= 0;
        if (ok)
            config_store_uint(cfg, opt, (uint64_t)idx);
        break;
    }
    case CONFIG_ACTION:
        ok = 0;
        break;
    }
    if (!ok) {
        char expected[128];
        config_expected(opt, expected, sizeof(expected));
        fprintf(stderr, CONFIG_PROG ": invalid value for %s: \"%s\" (expected %s)\n", source, text,
                expected);
        return -1;
    }
    return 0;
}

static const struct config_option *config_find(const char *name, size_t name_len)
{
    for (size_t i = 0; i < CONFIG_NUM_OPTIONS; i++) {
        const char *n = config_options[i].name;
        if (strlen(n) == name_len && memcmp(n, name, name_len) == 0)
            return &config_options[i];
    }
    return NULL;
}

static void config_print_help(FILE *out)
{
    struct config def;
    config_set_defaults(&def);
    fprintf(out, "usage: " CONFIG_PROG " [OPTION]...\n"
                 "A pre-forking HTTP/1.1 server storing tasks in one JSON file (POST and GET "
                 "/tareas).\n\n"
                 "Every option is also read from the environment variable shown (flags win);\n"
                 "OPTION VALUE and OPTION=VALUE both work; timeouts S are seconds, e.g. 0.5.\n\n");
    for (size_t i = 0; i < CONFIG_NUM_OPTIONS; i++) {
        const struct config_option *opt = &config_options[i];
        char flag[64];
        char env[64];
        char dflt[128];
        const char *field = (const char *)&def + opt->offset;

        if (opt->arg != NULL)
            snprintf(flag, sizeof(flag), "--%s %s", opt->name, opt->arg);
        else
            snprintf(flag, sizeof(flag), "--%s", opt->name);
        fprintf(out, "  %-26s %s\n", flag, opt->help);
        if (opt->kind == CONFIG_ACTION)
            continue;

        switch (opt->kind) {
        case CONFIG_UINT:
        case CONFIG_SECONDS: {
            uint64_t v;
            if (opt->size == sizeof(unsigned)) {
                unsigned u;
                memcpy(&u, field, sizeof(u));
                v = u;
            } else {
                size_t z;
                memcpy(&z, field, sizeof(z));
                v = z;
            }
            if (opt->kind == CONFIG_SECONDS && v % 1000 != 0)
                snprintf(dflt, sizeof(dflt), "%llu.%03llu s", (unsigned long long)(v / 1000),
                         (unsigned long long)(v % 1000));
            else if (opt->kind == CONFIG_SECONDS)
                snprintf(dflt, sizeof(dflt), "%llu s", (unsigned long long)(v / 1000));
            else if (strcmp(opt->name, "workers") == 0)
                snprintf(dflt, sizeof(dflt), "number of CPUs, here %llu", (unsigned long long)v);
            else
                snprintf(dflt, sizeof(dflt), "%llu", (unsigned long long)v);
            break;
        }
        case CONFIG_BOOL: {
            int b;
            memcpy(&b, field, sizeof(b));
            snprintf(dflt, sizeof(dflt), "%s", b ? "on" : "off");
            break;
        }
        case CONFIG_CHOICE: {
            unsigned u;
            memcpy(&u, field, sizeof(u));
            const char *w = opt->arg;
            for (; u > 0 && strchr(w, '|') != NULL; u--)
                w = strchr(w, '|') + 1;
            snprintf(dflt, sizeof(dflt), "%.*s", (int)strcspn(w, "|"), w);
            break;
        }
        default:
            snprintf(dflt, sizeof(dflt), "%s", field[0] != '\0' ? field : "off");
            break;
        }
        config_env_name(opt, env, sizeof(env));
        fprintf(out, "  %-26s default %s; env %s\n", "", dflt, env);
    }
}

/* The pass over argv keeps only the last text seen for each option (later flags win over
 * earlier ones); values are validated afterwards, so --help works whatever else is on the
 * line, and an environment variable is validated only when no flag overrides it. */
int config_parse(struct config *cfg, int argc, char **argv, config_getenv_fn *get_env)
{
    const char *flag_text[CONFIG_NUM_OPTIONS] = {0};
    static const char bool_on[] = "1";

    config_set_defaults(cfg);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            fprintf(stderr,
                    CONFIG_PROG ": unexpected argument \"%s\" (try " CONFIG_PROG " --help)\n", arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct config_option *opt = config_find(name, name_len);
        if (opt == NULL) {
            fprintf(stderr, CONFIG_PROG ": unknown option --%.*s (try " CONFIG_PROG " --help)\n",
                    (int)name_len, name);
            return -1;
        }
        size_t idx = (size_t)(opt - config_options);

        if (opt->kind == CONFIG_ACTION) {
            if (eq != NULL) {
                fprintf(stderr, CONFIG_PROG ": option --%s takes no value\n", opt->name);
                return -1;
            }
            if (strcmp(opt->name, "help") == 0)
                config_print_help(stdout);
            else
                version_print(stdout, CONFIG_PROG);
            return 1;
        }
        if (eq != NULL) {
            flag_text[idx] = eq + 1;
        } else if (opt->kind == CONFIG_BOOL) {
            /* A boolean flag never takes the next argument: "--quiet --fsync" must work. */
            flag_text[idx] = bool_on;
        } else if (i + 1 < argc) {
            flag_text[idx] = argv[++i];
        } else {
            fprintf(stderr,
                    CONFIG_PROG ": option --%s needs a value (try " CONFIG_PROG " --help)\n",
                    opt->name);
            return -1;
        }
    }

    for (size_t i = 0; i < CONFIG_NUM_OPTIONS; i++) {
        const struct config_option *opt = &config_options[i];
        if (opt->kind == CONFIG_ACTION)
            continue;
        if (flag_text[i] != NULL) {
            char source[64];
            snprintf(source, sizeof(source), "--%s", opt->name);
            if (config_apply(cfg, opt, flag_text[i], source) < 0)
                return -1;
            continue;
        }
        if (get_env == NULL)
            continue;
        char env[64];
        config_env_name(opt, env, sizeof(env));
        const char *text = get_env(env);
        /* An empty variable counts as unset: compose files often pass VAR= through. */
        if (text != NULL && text[0] != '\0' && config_apply(cfg, opt, text, env) < 0)
            return -1;
    }
    return 0;
}
