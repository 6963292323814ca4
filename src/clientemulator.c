/* clientemulator.c - load client: POSTs N tasks over libcurl multi, then checks they are stored. */
#include "client_barrier.h"
#include "client_http.h"
#include "client_load.h"
#include "client_metrics.h"
#include "client_spread.h"
#include "client_stats.h"
#include "client_verify.h"
#include "log.h"
#include "task_json.h"
#include "task_store.h"
#include "version.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Exit codes, as the issue and the README state them. */
enum {
    CLIENT_EXIT_OK = 0,          /* all acknowledged and (with --verify) stored once */
    CLIENT_EXIT_FAILED = 1,      /* tasks lost, doubled or refused */
    CLIENT_EXIT_USAGE = 2,       /* bad URL, bad number, bad flag */
    CLIENT_EXIT_UNREACHABLE = 3, /* no answer from the server after --wait */
    CLIENT_EXIT_BARRIER = 4      /* --barrier: the other clients never arrived */
};

#define CLIENT_TASKS_MAX 100000000ULL /* 10^8 tasks: 12.5 MB of bitmap, 400 MB of latencies */
#define CLIENT_CONCURRENCY_MAX 10000

struct client_options {
    char url[CLIENT_HTTP_URL_MAX];
    const char *url_from; /* where url came from, for messages: "--url", "environment SERVER_URL" */
    char id[TASK_CLIENTE_MAX + 1];
    uint64_t num_tasks;
    unsigned concurrency;
    double wait_s;
    double timeout_s;
    int verify;              /* send, then check */
    int verify_only;         /* check seq 1..N without sending */
    const char *verify_file; /* --verify-file: check in this file, not over GET /tareas */
    int health;              /* one GET /health */
    int json;
    int quiet;
    const char *metrics; /* --metrics URL: the server's lock waits before and after */
    const char *barrier; /* the shared folder of --barrier, or NULL */
    unsigned clients;    /* --clients: how many meet at the barrier */
    double barrier_timeout_s;
    double interval_ms; /* --interval-ms: 0 as fast as the concurrency allows */
    unsigned burst;     /* --burst: tasks per tick of --interval-ms */
    unsigned servers;   /* --servers: wait until this many addresses of the name answer */
};

static void client_usage(FILE *out)
{
    fputs(
        "usage: clientemulator [--url URL] [--tasks N] [--concurrency C] [--interval-ms T]\n"
        "                      [--burst B] [--id NAME]\n"
        "                      [--verify] [--wait S] [--timeout S] [--json] [--quiet]\n"
        "                      [--metrics URL]\n"
        "                      [--barrier DIR --clients K [--barrier-timeout S]] [--servers N]\n"
        "                      [--verify-file FILE]\n"
        "       clientemulator --verify-only --id NAME --tasks N [--url URL | --verify-file FILE]\n"
        "       clientemulator --health [--url URL] [--servers N]\n"
        "       clientemulator --help | --version\n"
        "\n"
        "POSTs tasks {\"titulo\":\"<id>-<seq>\",\"cliente\":\"<id>\",\"seq\":<seq>}, seq 1..N, to\n"
        "URL/tareas over one libcurl multi handle with C keep-alive connections, and\n"
        "prints a summary: sent, acknowledged, failed by kind, rate, latency p50/p90/p99/max.\n"
        "\n"
        "  --url URL          server (default http://localhost:9000; env SERVER_URL)\n"
        "  --tasks N          tasks to send (default 100; env TASKS)\n"
        "  --concurrency C    requests in flight and connections (default 100; env CONCURRENCY)\n"
        "  --interval-ms T    send B tasks every T ms, on a schedule from the start (default 0:\n"
        "                     as fast as C allows; env INTERVAL_MS); clients started together\n"
        "                     by --barrier then send their n-th tasks at the same moment\n"
        "  --burst B          tasks sent at once at each tick of --interval-ms (default 1; env\n"
        "                     BURST), over up to B connections, which land on different workers\n"
        "  --id NAME          client id (default: the host name; env CLIENT_ID)\n"
        "  --verify           then GET /tareas and check each acknowledged task is stored once\n"
        "  --verify-only      only the check, counting seq 1..N as acknowledged\n"
        "  --verify-file FILE check in FILE itself (the server's tasks.json, on this machine or\n"
        "                     a shared volume) instead of GET /tareas: read under the read lock,\n"
        "                     as taskctl verify does, it counts every record that can be read,\n"
        "                     also when the server refuses to serve a damaged list (implies\n"
        "                     --verify)\n"
        "  --wait S           wait up to S seconds for GET /health to answer 200 (default 30)\n"
        "  --timeout S        per-request timeout in seconds (default 30)\n"
        "  --json             print the summary as one JSON object\n"
        "  --quiet            no progress bar and no text summary (errors still go to stderr)\n"
        "  --health           one GET /health, its body printed: exit 0 on 200, 1 on another\n"
        "                     status, 3 if no answer\n"
        "  --metrics URL      the server's /metrics (URL, or URL/metrics when the path is not\n"
        "                     /metrics): GET before and after the run, then print how many\n"
        "                     lock waits the server saw meanwhile and their p50/p99, estimated\n"
        "                     from the histogram buckets\n"
        "  --barrier DIR      start together with the other clients that use DIR (a folder\n"
        "                     they all share, one per run): wait until K are ready, then all\n"
        "                     start at one instant; afterwards report how long they overlapped\n"
        "                     and write DIR/result/ID (key=value lines) for a verifier\n"
        "  --clients K        how many clients meet at the barrier (env CLIENTS)\n"
        "  --barrier-timeout S  give up waiting for the others after S seconds (default 120)\n"
        "  --servers N        the URL's host names several servers (Docker's dnsrr: one address\n"
        "                     per replica): wait up to --wait until N of its addresses answer\n"
        "                     GET /health (env SERVERS; with --health, print each one's)\n"
        "\n"
        "When the URL's host resolves to several addresses that answer GET /health, the tasks\n"
        "are spread over them: task seq goes to address (seq - 1) mod n, each over its own\n"
        "keep-alive connections, and the summary counts each address's requests and 201s.\n"
        "\n"
        "With --verify, this client's tasks are the ones at or above the lowest id its 201s\n"
        "carried: tasks of an earlier run with the same --id are reported, not counted.\n"
        "Failed requests are never retried. Exit: 0 all acknowledged (and stored once),\n"
        "1 tasks lost, doubled or refused, 2 usage error, 3 server unreachable, 4 the other\n"
        "clients never reached the barrier.\n",
        out);
}

static int client_parse_u64(const char *what, const char *s, uint64_t min, uint64_t max,
                            uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v < min || v > max) {
        log_error("%s \"%s\": expected a whole number from %llu to %llu", what, s,
                  (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int client_parse_real(const char *what, const char *s, double min, double max,
                             const char *unit, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < min || v > max) {
        log_error("%s \"%s\": expected %s from %g to %g", what, s, unit, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int client_set_string(const char *what, const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n == 0 || n >= cap) {
        log_error("%s \"%.40s\": must be 1 to %zu bytes", what, s, cap - 1);
        return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

/* One setting that the environment and a flag can both give: the text wins
 * by order (environment first, the flag over it) and is parsed only after
 * every flag is read, so a bad value that a flag replaces is never judged
 * (TASKS=zz clientemulator --tasks 5 runs), and a bad value that is used is
 * reported under the name it came from. */
struct client_setting {
    const char *text; /* NULL: the default stays */
    const char *from; /* "--tasks" or "environment TASKS" */
};

static void client_setting_env(struct client_setting *set, const char *var, const char *what)
{
    const char *env = getenv(var);
    if (env && *env) {
        set->text = env;
        set->from = what;
    }
}

/* The settings that the environment and a flag can both give. */
struct client_settings {
    struct client_setting url, tasks, concurrency, id, clients, interval, burst, servers;
};

enum {
    OPT_VERIFY_ONLY = 256,
    OPT_HEALTH,
    OPT_VERSION,
    OPT_METRICS,
    OPT_BARRIER,
    OPT_CLIENTS,
    OPT_BARRIER_TIMEOUT,
    OPT_INTERVAL,
    OPT_BURST,
    OPT_SERVERS,
    OPT_VERIFY_FILE
};
static const struct option client_longopts[] = {
    {"url", required_argument, NULL, 'u'},
    {"tasks", required_argument, NULL, 'n'},
    {"concurrency", required_argument, NULL, 'c'},
    {"id", required_argument, NULL, 'i'},
    {"verify", no_argument, NULL, 'v'},
    {"verify-only", no_argument, NULL, OPT_VERIFY_ONLY},
    {"verify-file", required_argument, NULL, OPT_VERIFY_FILE},
    {"wait", required_argument, NULL, 'w'},
    {"timeout", required_argument, NULL, 't'},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"health", no_argument, NULL, OPT_HEALTH},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"barrier", required_argument, NULL, OPT_BARRIER},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"barrier-timeout", required_argument, NULL, OPT_BARRIER_TIMEOUT},
    {"interval-ms", required_argument, NULL, OPT_INTERVAL},
    {"burst", required_argument, NULL, OPT_BURST},
    {"servers", required_argument, NULL, OPT_SERVERS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* The defaults, then the environment's settings. */
static void client_defaults(struct client_options *o, struct client_settings *set)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->url, sizeof(o->url), "http://localhost:9000");
    o->url_from = "default url";
    o->num_tasks = 100;
    o->concurrency = 100;
    o->wait_s = 30;
    o->timeout_s = 30;
    o->barrier_timeout_s = 120;
    /* Each container has its own host name: a unique id with no setting at all. */
    if (gethostname(o->id, sizeof(o->id)) < 0 || !o->id[0])
        snprintf(o->id, sizeof(o->id), "client");
    o->id[sizeof(o->id) - 1] = '\0';

    client_setting_env(&set->url, "SERVER_URL", "environment SERVER_URL");
    client_setting_env(&set->tasks, "TASKS", "environment TASKS");
    client_setting_env(&set->concurrency, "CONCURRENCY", "environment CONCURRENCY");
    client_setting_env(&set->id, "CLIENT_ID", "environment CLIENT_ID");
    client_setting_env(&set->clients, "CLIENTS", "environment CLIENTS");
    client_setting_env(&set->interval, "INTERVAL_MS", "environment INTERVAL_MS");
    client_setting_env(&set->burst, "BURST", "environment BURST");
    client_setting_env(&set->servers, "SERVERS", "environment SERVERS");
}

/* The flags: options set at once, settings noted for client_apply(). Returns
 * 0, 1 after --help or --version, -1 after a usage error. */
static int client_flags(struct client_options *o, struct client_settings *set, int argc,
                        char **argv)
{
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":u:n:c:i:vw:t:jqh", client_longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            set->url = (struct client_setting){optarg, "--url"};
            break;
        case 'n':
            set->tasks = (struct client_setting){optarg, "--tasks"};
            break;
        case 'c':
            set->concurrency = (struct client_setting){optarg, "--concurrency"};
            break;
        case 'i':
            set->id = (struct client_setting){optarg, "--id"};
            break;
        case 'v':
            o->verify = 1;
            break;
        case OPT_VERIFY_ONLY:
            o->verify = o->verify_only = 1;
            break;
        case OPT_VERIFY_FILE:
            if (!*optarg) {
                log_error("--verify-file: needs a file name");
                return -1;
            }
            o->verify = 1;
            o->verify_file = optarg;
            break;
        case 'w':
            if (client_parse_real("--wait", optarg, 0, 86400, "seconds", &o->wait_s) < 0)
                return -1;
            break;
        case 't':
            if (client_parse_real("--timeout", optarg, 0.001, 86400, "seconds", &o->timeout_s) < 0)
                return -1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case OPT_HEALTH:
            o->health = 1;
            break;
        case OPT_METRICS:
            o->metrics = optarg;
            break;
        case OPT_BARRIER:
            o->barrier = optarg;
            break;
        case OPT_BURST:
            set->burst = (struct client_setting){optarg, "--burst"};
            break;
        case OPT_INTERVAL:
            set->interval = (struct client_setting){optarg, "--interval-ms"};
            break;
        case OPT_SERVERS:
            set->servers = (struct client_setting){optarg, "--servers"};
            break;
        case OPT_CLIENTS:
            set->clients = (struct client_setting){optarg, "--clients"};
            break;
        case OPT_BARRIER_TIMEOUT:
            if (client_parse_real("--barrier-timeout", optarg, 0, 86400, "seconds",
                                  &o->barrier_timeout_s) < 0)
                return -1;
            break;
        case 'h':
            client_usage(stdout);
            return 1;
        case OPT_VERSION:
            version_print(stdout, "clientemulator");
            return 1;
        case ':':
            log_error("option %s: needs a value (see --help)", argv[optind - 1]);
            return -1;
        default:
            log_error("option %s: unknown (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        log_error("argument \"%s\": unexpected (see --help)", argv[optind]);
        return -1;
    }
    return 0;
}

/* The settings parsed, each under the name it came from; the combinations
 * checked. Returns 0, or -1 after a usage error. */
static int client_apply(struct client_options *o, const struct client_settings *set)
{
    uint64_t n;

    if (set->url.text) {
        if (client_set_string(set->url.from, set->url.text, o->url, sizeof(o->url)) < 0)
            return -1;
        o->url_from = set->url.from;
    }
    if (set->tasks.text &&
        client_parse_u64(set->tasks.from, set->tasks.text, 0, CLIENT_TASKS_MAX, &o->num_tasks) < 0)
        return -1;
    if (set->concurrency.text) {
        if (client_parse_u64(set->concurrency.from, set->concurrency.text, 1,
                             CLIENT_CONCURRENCY_MAX, &n) < 0)
            return -1;
        o->concurrency = (unsigned)n;
    }
    if (set->id.text && client_set_string(set->id.from, set->id.text, o->id, sizeof(o->id)) < 0)
        return -1;
    if (set->interval.text && client_parse_real(set->interval.from, set->interval.text, 0, 60000,
                                                "milliseconds", &o->interval_ms) < 0)
        return -1;
    o->burst = 1;
    if (set->burst.text) {
        if (client_parse_u64(set->burst.from, set->burst.text, 1, CLIENT_CONCURRENCY_MAX, &n) < 0)
            return -1;
        o->burst = (unsigned)n;
    }
    if (set->servers.text) {
        if (client_parse_u64(set->servers.from, set->servers.text, 1, CLIENT_SPREAD_MAX, &n) < 0)
            return -1;
        o->servers = (unsigned)n;
    }
    if (o->barrier) {
        if (!set->clients.text) {
            log_error("--barrier %s: needs --clients K (or CLIENTS), how many meet there",
                      o->barrier);
            return -1;
        }
        if (client_parse_u64(set->clients.from, set->clients.text, 1, 10000, &n) < 0)
            return -1;
        o->clients = (unsigned)n;
        if (o->verify_only || o->health) {
            log_error("--barrier: only for a client that sends (not with --verify-only or "
                      "--health)");
            return -1;
        }
    }
    if (o->verify_file && o->health) {
        log_error("--verify-file %s: not with --health", o->verify_file);
        return -1;
    }
    return 0;
}

/* Environment first, flags over it. Returns 0 to run, 1 when --help or
 * --version was printed, -1 after a usage error was printed. */
static int client_parse(struct client_options *o, int argc, char **argv)
{
    struct client_settings set;
    memset(&set, 0, sizeof(set));
    client_defaults(o, &set);
    int rc = client_flags(o, &set, argc, argv);
    return rc != 0 ? rc : client_apply(o, &set);
}

/* The write callback of GET /tareas: every byte of a 200 goes to the verifier. */
static int client_verify_body(void *arg, long status, const char *data, size_t len)
{
    if (status != 200)
        return 0; /* an error page: the status is reported after the transfer */
    return client_verify_feed(arg, data, len) < 0 ? -1 : 0;
}

static void client_print_json_string(FILE *out, const char *s)
{
    char buf[CLIENT_HTTP_URL_MAX * 6 + 2];
    long n = task_json_escape(s, strlen(s), buf, sizeof(buf));
    fprintf(out, "%.*s", n < 0 ? 2 : (int)n, n < 0 ? "\"\"" : buf);
}

/* --health --servers N: each answering address's /health, once N of them answer. */
static int client_health_each(const struct client_options *o, const char *health_url)
{
    char err[2048];
    struct client_spread sp;
    int rc = CLIENT_EXIT_OK;
    if (client_spread_find(&sp, o->url, o->servers, (long)(o->wait_s * 1000),
                           (long)(o->timeout_s * 1000), err, sizeof(err)) < 0) {
        log_error("health: %s", err);
        rc = errno == EINVAL ? CLIENT_EXIT_USAGE : CLIENT_EXIT_UNREACHABLE;
    } else if (!o->quiet) {
        for (unsigned i = 0; i < sp.num_addrs; i++)
            printf("GET %s at %s: 200 %s\n", health_url, sp.addrs[i].addr, sp.addrs[i].health);
        printf("%u of %u addresses of %s answer\n", sp.num_addrs, sp.num_found, sp.host);
    }
    client_spread_release(&sp);
    return rc;
}

static int client_health(const struct client_options *o, const char *health_url)
{
    int code;
    char err[512];
    struct client_http_health h;
    if (o->servers > 1)
        return client_health_each(o, health_url);
    if (client_http_health_get(health_url, (long)(o->timeout_s * 1000), &h, &code, err,
                               sizeof(err)) < 0) {
        log_error("health: %s", err);
        return code != 0 ? CLIENT_EXIT_UNREACHABLE : CLIENT_EXIT_FAILED;
    }
    if (!o->quiet)
        printf("GET %s: 200 %s\n", health_url, h.body);
    return CLIENT_EXIT_OK;
}

/* The scrape URL of --metrics: as given when its path ends in /metrics, else
 * with /metrics added. Returns 0, or -1 with err. */
static int client_metrics_url(const char *given, char *out, size_t cap, char *err, size_t err_len)
{
    size_t n = strlen(given);
    const char *tail = "/metrics";
    if (n >= strlen(tail) && strcmp(given + n - strlen(tail), tail) == 0) {
        char base[CLIENT_HTTP_URL_MAX];
        if (n - strlen(tail) >= sizeof(base)) {
            snprintf(err, err_len, "bad url \"%.64s...\": too long", given);
            return -1;
        }
        memcpy(base, given, n - strlen(tail));
        base[n - strlen(tail)] = '\0';
        return client_http_endpoint(base, tail, out, cap, err, err_len);
    }
    return client_http_endpoint(given, tail, out, cap, err, err_len);
}

/* --metrics: what the server's lock saw during the run, or why it is not known. */
struct client_lock_report {
    int ok;
    struct client_metrics_hist before;
    struct client_metrics_hist run;
    char err[512];
};

static void client_lock_print_text(const struct client_lock_report *r, const char *url)
{
    if (!r->ok) {
        printf("server lock waits: unknown (%s)\n", r->err);
        return;
    }
    printf("server lock waits during the run: %llu (from %s)", (unsigned long long)r->run.count,
           url);
    if (r->run.count > 0)
        printf(", wait p50 %.1f us, p99 %.1f us (estimated from the histogram buckets)",
               client_metrics_quantile(&r->run, 0.5) * 1e6,
               client_metrics_quantile(&r->run, 0.99) * 1e6);
    printf("\n");
}

static void client_lock_print_json(const struct client_lock_report *r)
{
    if (!r->ok) {
        printf("null");
        return;
    }
    printf("{\"waits\":%llu,\"p50_s\":%.9f,\"p99_s\":%.9f,\"estimate\":\"histogram buckets\"}",
           (unsigned long long)r->run.count, client_metrics_quantile(&r->run, 0.5),
           client_metrics_quantile(&r->run, 0.99));
}

/* The barrier, called by the load loop once its connections are set up. */
struct client_barrier_call {
    struct client_barrier *b;
    char err[1024];
    int failed;
};

static int client_barrier_ready(void *arg)
{
    struct client_barrier_call *call = arg;
    if (client_barrier_start(call->b, call->err, sizeof(call->err)) < 0) {
        call->failed = 1;
        return -1;
    }
    return 0;
}

static const char *client_locking_word(int locking)
{
    return locking == 1 ? "true" : locking == 0 ? "false" : "unknown";
}

/* "12:00:01.234" (UTC) for a CLOCK_REALTIME instant. */
static void client_format_instant(uint64_t ns, char *out, size_t cap)
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "?");
        return;
    }
    snprintf(out, cap, "%02d:%02d:%02d.%03u UTC", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ns % 1000000000u / 1000000u));
}

static double client_percent(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void client_print_overlap(FILE *out, const struct client_barrier *b,
                                 const struct client_barrier_overlap *ov)
{
    char when[32];
    client_format_instant(b->start_ns, when, sizeof(when));
    fprintf(out, "barrier: %u of %u clients ready, all started at %s (this client %.1f ms late)\n",
            b->num_ready, b->parties, when, (double)b->late_ns / 1e6);
    if (ov->num_spans < 2) {
        fprintf(out, "overlap: no other client reported its span\n");
        return;
    }
    fprintf(out,
            "overlap: another client was sending during %.1f ms of this client's %.1f ms "
            "(%.0f%%); all %u clients at once for %.1f ms of %.1f ms (%.0f%%)\n",
            (double)ov->shared_ns / 1e6, (double)ov->mine_ns / 1e6,
            client_percent(ov->shared_ns, ov->mine_ns), ov->num_spans, (double)ov->all_ns / 1e6,
            (double)ov->union_ns / 1e6, client_percent(ov->all_ns, ov->union_ns));
}

static void client_print_overlap_json(FILE *out, const struct client_barrier *b,
                                      const struct client_barrier_overlap *ov)
{
    fprintf(out,
            "{\"clients\":%u,\"ready\":%u,\"start_ns\":%" PRIu64 ",\"late_ms\":%.3f,"
            "\"spans\":%u,\"mine_ms\":%.3f,\"shared_ms\":%.3f,\"all_ms\":%.3f,\"union_ms\":%.3f}",
            b->parties, b->num_ready, b->start_ns, (double)b->late_ns / 1e6, ov->num_spans,
            (double)ov->mine_ns / 1e6, (double)ov->shared_ns / 1e6, (double)ov->all_ns / 1e6,
            (double)ov->union_ns / 1e6);
}

/* Which address got which tasks, when the name led to several. */
static void client_print_spread(FILE *out, const struct client_spread *sp)
{
    if (sp->num_addrs == 0)
        return;
    fprintf(out,
            "spread over %u addresses of %s (task seq n to address (n - 1) mod %u):", sp->num_addrs,
            sp->host, sp->num_addrs);
    for (unsigned i = 0; i < sp->num_addrs; i++)
        fprintf(out, "%s %s %llu sent %llu acknowledged", i ? "," : "", sp->addrs[i].addr,
                (unsigned long long)sp->addrs[i].num_sent,
                (unsigned long long)sp->addrs[i].num_acked);
    fputc('\n', out);
}

static void client_print_spread_json(FILE *out, const struct client_spread *sp)
{
    if (sp->num_addrs == 0) {
        fputs("null", out);
        return;
    }
    fputc('[', out);
    for (unsigned i = 0; i < sp->num_addrs; i++)
        fprintf(out, "%s{\"address\":\"%s\",\"sent\":%llu,\"acked\":%llu}", i ? "," : "",
                sp->addrs[i].addr, (unsigned long long)sp->addrs[i].num_sent,
                (unsigned long long)sp->addrs[i].num_acked);
    fputc(']', out);
}

/* DIR/result/ID for the verifier: one key=value per line. */
static void client_write_result(const struct client_barrier *b, const char *id, int rc, int locking,
                                const struct client_stats *st, const struct client_verify *v)
{
    char text[1024], err[1024];
    const struct client_verify_result *r = v ? client_verify_result(v) : NULL;
    int n = snprintf(text, sizeof(text),
                     "id=%s\nexit=%d\nlocking=%s\nsent=%" PRIu64 "\nacked=%" PRIu64
                     "\nstart_ns=%" PRIu64 "\nend_ns=%" PRIu64 "\n",
                     id, rc, client_locking_word(locking), st ? st->num_sent : 0,
                     st ? st->num_acked : 0, st ? st->start_ns : 0, st ? st->end_ns : 0);
    if (r && n > 0 && (size_t)n < sizeof(text))
        snprintf(text + n, sizeof(text) - (size_t)n,
                 "stored=%" PRIu64 "\nmissing=%" PRIu64 "\ndoubled=%" PRIu64 "\nearlier=%" PRIu64
                 "\nblocks=%" PRIu64 "\nswitches=%" PRIu64 "\n",
                 r->num_stored, r->num_missing, r->num_doubled, r->num_earlier, r->num_blocks,
                 r->num_switches);
    if (client_barrier_result(b, text, err, sizeof(err)) < 0)
        log_error("%s", err);
}

/* One run of the client: what main() sets up and its phases share. */
struct client_run {
    struct client_options o;
    char health_url[CLIENT_HTTP_URL_MAX], tareas_url[CLIENT_HTTP_URL_MAX];
    char metrics_url[CLIENT_HTTP_URL_MAX]; /* "" without --metrics */
    char note[64];                         /* "server locking=...", for the verdict */
    const char *verify_where;              /* what --verify reads: tareas_url or the file */
    long timeout_ms;
    struct client_stats st;
    int stats_ready;
    struct client_verify *v; /* with --verify, once the list was read */
    struct client_http_health health;
    struct client_barrier barrier;
    struct client_barrier_overlap overlap;
    int have_overlap;
    struct client_barrier_call call;
    unsigned char *acked; /* bit seq - 1: that task was acknowledged */
    struct client_lock_report lock;
    struct client_spread spread;
};

/* Sends the tasks (after the barrier, with --barrier), then meets the others
 * at the end and scrapes the lock waits. Returns 0, or an exit code. */
static int client_send(struct client_run *r)
{
    const struct client_options *o = &r->o;
    r->acked = calloc((size_t)(o->num_tasks / 8 + 1), 1);
    if (!r->acked) {
        log_error("%llu tasks: out of memory", (unsigned long long)o->num_tasks);
        return CLIENT_EXIT_FAILED;
    }
    struct client_load_config cfg = {
        .url = r->tareas_url,
        .id = o->id,
        .num_tasks = o->num_tasks,
        .concurrency = o->concurrency,
        .timeout_ms = r->timeout_ms,
        /* Only for a person watching a terminal: the bar goes to stderr, but when
         * stdout is piped or captured (a script, compose's logs) or holds --json,
         * its carriage-return frames would only litter what is read later. */
        .progress = !o->quiet && !o->json && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO),
        .interval_us = (uint64_t)llround(o->interval_ms * 1000),
        .burst = o->burst,
        .ready = o->barrier ? client_barrier_ready : NULL,
        .ready_arg = &r->call,
        .spread = &r->spread,
    };
    /* The lock waits of the run alone: the difference of two scrapes. A
     * metrics problem is reported, never the run's verdict. */
    struct client_lock_report *lock = &r->lock;
    if (r->metrics_url[0])
        lock->ok = client_metrics_scrape(r->metrics_url, r->timeout_ms, &lock->before, lock->err,
                                         sizeof(lock->err)) == 0;
    if (client_load_run(&cfg, &r->st, r->acked) < 0) {
        if (!r->call.failed)
            return CLIENT_EXIT_FAILED;
        log_error("%s", r->call.err);
        client_write_result(&r->barrier, o->id, CLIENT_EXIT_BARRIER, r->health.locking, NULL, NULL);
        return CLIENT_EXIT_BARRIER;
    }
    if (o->barrier) {
        /* Waits for the others to finish too: verifying before they are done would
         * miss what a late racing write destroys. */
        char err[1024];
        struct client_barrier_span me = {r->st.start_ns, r->st.end_ns, r->st.num_sent,
                                         r->st.num_acked};
        int br = client_barrier_finish(&r->barrier, &me, &r->overlap, err, sizeof(err));
        if (br != 0)
            log_warn("%s", err);
        r->have_overlap = br >= 0;
    }
    if (lock->ok) {
        struct client_metrics_hist after;
        lock->ok = client_metrics_scrape(r->metrics_url, r->timeout_ms, &after, lock->err,
                                         sizeof(lock->err)) == 0;
        if (lock->ok)
            client_metrics_diff(&lock->before, &after, &lock->run);
    }
    if (r->metrics_url[0] && !lock->ok)
        log_error("--metrics: %s", lock->err);
    return 0;
}

/* --verify-file: the file itself, under the read lock (task_store.h): no
 * append is half done in what is read, and every record that can be read is
 * counted, also where the server would refuse the list (503, 500) because it
 * is damaged: the clients' count of lost tasks is then exact, not a bound.
 * Returns 0, or -1 after the error was printed. */
static int client_check_file(const char *path, struct client_verify *v)
{
    char err[1024];
    static char buf[1 << 16];
    int fd = task_store_reader_open(path, err, sizeof(err));
    if (fd < 0) {
        log_error("verify: %s", err);
        return -1;
    }
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("verify: read %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (client_verify_feed(v, buf, (size_t)n) < 0) {
            log_error("verify %s: out of memory for the id bitmap", path);
            rc = -1;
            break;
        }
    }
    task_store_reader_close(fd);
    return rc;
}

/* --verify: GET /tareas (or --verify-file), every byte through the verifier.
 * Returns the exit code rc becomes; r->v stays NULL when the list could not be
 * read whole. */
static int client_check(struct client_run *r, int rc)
{
    char err[1024];
    long status;
    int code;
    struct client_verify *v = client_verify_new(r->o.id, r->o.num_tasks, r->acked,
                                                r->o.verify_only ? 0 : r->st.min_acked_id);
    if (!v) {
        log_error("verify %s: out of memory for %llu tasks", r->verify_where,
                  (unsigned long long)r->o.num_tasks);
        return CLIENT_EXIT_FAILED;
    }
    if (r->o.verify_file) {
        if (client_check_file(r->o.verify_file, v) < 0) {
            client_verify_free(v);
            return CLIENT_EXIT_FAILED;
        }
    } else if (client_http_get(r->tareas_url, r->timeout_ms, client_verify_body, v, &status, &code,
                               err, sizeof(err)) < 0) {
        log_error("verify: %s", err);
        client_verify_free(v);
        return code == CURLE_COULDNT_CONNECT ? CLIENT_EXIT_UNREACHABLE : CLIENT_EXIT_FAILED;
    } else if (status != 200) {
        log_error("verify: GET %s answered HTTP %ld", r->tareas_url, status);
        client_verify_free(v);
        return CLIENT_EXIT_FAILED;
    }
    client_verify_finish(v);
    r->v = v;
    return client_verify_ok(v) ? rc : CLIENT_EXIT_FAILED;
}

static void client_report_json(const struct client_run *r, int rc)
{
    const struct client_options *o = &r->o;
    printf("{\"url\":");
    client_print_json_string(stdout, o->url);
    printf(",\"id\":");
    client_print_json_string(stdout, o->id);
    printf(",\"tasks\":%llu,\"concurrency\":%u,\"locking_build\":%s,",
           (unsigned long long)o->num_tasks, o->concurrency, version_locking() ? "true" : "false");
    printf("\"server\":{\"locking\":%s,\"workers\":%lld,\"tasks\":%lld},",
           r->health.locking == 1   ? "true"
           : r->health.locking == 0 ? "false"
                                    : "null",
           r->health.workers, r->health.tasks);
    client_stats_print_json_fields(&r->st, stdout);
    printf(",\"spread\":");
    client_print_spread_json(stdout, &r->spread);
    printf(",\"min_acked_id\":%llu,\"barrier\":", (unsigned long long)r->st.min_acked_id);
    if (r->have_overlap)
        client_print_overlap_json(stdout, &r->barrier, &r->overlap);
    else
        printf("null");
    printf(",\"verify\":");
    if (r->v) {
        client_verify_print_json(r->v, stdout);
        printf(",\"verified_in\":");
        client_print_json_string(stdout, r->verify_where);
    } else
        printf("null");
    if (r->metrics_url[0]) {
        printf(",\"server_lock_waits\":");
        client_lock_print_json(&r->lock);
    }
    printf(",\"exit\":%d}\n", rc);
}

static void client_report_text(const struct client_run *r)
{
    const struct client_options *o = &r->o;
    if (!o->verify_only) {
        printf("client \"%s\": %llu tasks to %s, concurrency %u", o->id,
               (unsigned long long)o->num_tasks, r->tareas_url, o->concurrency);
        if (o->interval_ms > 0)
            printf(", %u every %g ms", o->burst, o->interval_ms);
        putchar('\n');
        printf("server: GET /health says locking=%s, %lld workers, %lld tasks in the file\n",
               client_locking_word(r->health.locking), r->health.workers, r->health.tasks);
        client_stats_print_text(&r->st, stdout);
        client_print_spread(stdout, &r->spread);
        if (r->metrics_url[0])
            client_lock_print_text(&r->lock, r->metrics_url);
        if (r->have_overlap)
            client_print_overlap(stdout, &r->barrier, &r->overlap);
    }
    if (r->v)
        client_verify_print_text(r->v, stdout, r->verify_where, r->note[0] ? r->note : NULL);
}

/* The summary (JSON or text), the failures on stderr, the barrier's result file. */
static void client_report(const struct client_run *r, int rc)
{
    const struct client_stats *st = &r->st;
    if (r->o.json)
        client_report_json(r, rc);
    else if (!r->o.quiet)
        client_report_text(r);
    if (rc == CLIENT_EXIT_FAILED && client_stats_num_failed(st))
        log_error("POST %s: %llu of %llu requests failed, the first: %s", r->tareas_url,
                  (unsigned long long)client_stats_num_failed(st), (unsigned long long)st->num_sent,
                  st->first_error);
    if (r->v && !client_verify_ok(r->v)) {
        const struct client_verify_result *res = client_verify_result(r->v);
        log_error("verify %s: %llu of this client's acknowledged tasks lost, %llu doubled, "
                  "%llu duplicate ids, %llu damaged lines",
                  r->verify_where, (unsigned long long)res->num_missing,
                  (unsigned long long)res->num_doubled, (unsigned long long)res->num_dup_ids,
                  (unsigned long long)res->num_damaged_lines);
    }
    if (r->o.barrier)
        client_write_result(&r->barrier, r->o.id, rc, r->health.locking, st, r->v);
}

/* The URLs and the barrier from the options. Returns 0, or -1 after a usage
 * error was printed. */
static int client_prepare(struct client_run *r)
{
    char err[1024];
    const struct client_options *o = &r->o;
    if (client_http_endpoint(o->url, "/health", r->health_url, sizeof(r->health_url), err,
                             sizeof(err)) < 0 ||
        client_http_endpoint(o->url, "/tareas", r->tareas_url, sizeof(r->tareas_url), err,
                             sizeof(err)) < 0) {
        log_error("%s: %s", o->url_from, err);
        return -1;
    }
    if (o->metrics && client_metrics_url(o->metrics, r->metrics_url, sizeof(r->metrics_url), err,
                                         sizeof(err)) < 0) {
        log_error("--metrics: %s", err);
        return -1;
    }
    if (o->barrier &&
        client_barrier_init(&r->barrier, o->barrier, o->id, o->clients,
                            (long)(o->barrier_timeout_s * 1000), err, sizeof(err)) < 0) {
        log_error("--barrier: %s", err);
        return -1;
    }
    /* A file that cannot be read is known now, before any task is sent to be
     * checked in it. */
    if (o->verify_file) {
        int fd = open(o->verify_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            log_error("--verify-file %s: %s", o->verify_file, strerror(errno));
            return -1;
        }
        struct stat st;
        int isreg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        close(fd);
        if (!isreg) {
            log_error("--verify-file %s: not a regular file", o->verify_file);
            return -1;
        }
    }
    r->call.b = &r->barrier;
    r->verify_where = o->verify_file ? o->verify_file : r->tareas_url;
    r->timeout_ms = (long)ceil(o->timeout_s * 1000);
    return 0;
}

/* Waits for the server, learns its build, finds the servers behind the name.
 * Returns 0, or an exit code. */
static int client_reach(struct client_run *r)
{
    char err[2048];
    int code;
    const struct client_options *o = &r->o;
    if (client_http_wait_ok(r->health_url, (long)(o->wait_s * 1000), r->timeout_ms, err,
                            sizeof(err)) < 0) {
        log_error("%s", err);
        return CLIENT_EXIT_UNREACHABLE;
    }
    /* Which build answers: the verdict names it, so a stale image cannot pass unnoticed. */
    if (client_http_health_get(r->health_url, r->timeout_ms, &r->health, &code, err, sizeof(err)) <
        0)
        log_warn("health: %s: the server's build is unknown", err);
    snprintf(r->note, sizeof(r->note), "server locking=%s", client_locking_word(r->health.locking));
    /* Every server behind the name gets its share (client_spread.h). */
    if (!o->verify_only &&
        client_spread_find(&r->spread, o->url, o->servers, (long)(o->wait_s * 1000), r->timeout_ms,
                           err, sizeof(err)) < 0) {
        log_error("%s", err);
        return errno == EINVAL ? CLIENT_EXIT_USAGE : CLIENT_EXIT_UNREACHABLE;
    }
    if (r->spread.num_ignored > 0)
        log_warn("%s: %u more addresses answer; only the first %d get tasks", r->spread.host,
                 r->spread.num_ignored, CLIENT_SPREAD_MAX);
    return 0;
}

static int client_main(struct client_run *r)
{
    struct client_options *o = &r->o;
    if (o->health)
        return client_health(o, r->health_url);
    /* Checking a file after others did the sending needs no server at all. */
    int rc = o->verify_only && o->verify_file ? 0 : client_reach(r);
    if (rc != 0)
        return rc;
    if (o->concurrency > o->num_tasks && o->num_tasks > 0)
        o->concurrency = (unsigned)o->num_tasks; /* no idle handles */
    if (client_stats_init(&r->st, o->verify_only ? 0 : o->num_tasks) < 0) {
        log_error("%llu tasks: out of memory for the latencies", (unsigned long long)o->num_tasks);
        return CLIENT_EXIT_FAILED;
    }
    r->stats_ready = 1;
    if (!o->verify_only && (rc = client_send(r)) != 0)
        return rc;
    rc = client_stats_num_failed(&r->st) ? CLIENT_EXIT_FAILED : CLIENT_EXIT_OK;
    if (o->verify)
        rc = client_check(r, rc);
    client_report(r, rc);
    return rc;
}

int main(int argc, char **argv)
{
    static struct client_run run; /* large (URLs, spread): not on the stack */
    struct client_run *r = &run;
    r->health.locking = -1;

    log_init("clientemulator");
    int pr = client_parse(&r->o, argc, argv);
    if (pr != 0)
        return pr > 0 ? CLIENT_EXIT_OK : CLIENT_EXIT_USAGE;
    version_warn_if_unlocked("clientemulator");
    if (client_prepare(r) < 0)
        return CLIENT_EXIT_USAGE;
    /* A peer that closes while we write must be an error code, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed");
        return CLIENT_EXIT_FAILED;
    }
    int rc = client_main(r);
    fflush(stdout);
    client_spread_release(&r->spread);
    client_verify_free(r->v);
    free(r->acked);
    if (r->stats_ready)
        client_stats_release(&r->st);
    curl_global_cleanup();
    return rc;
}
