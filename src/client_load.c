/* client_load.c - the libcurl multi loop: C handles, C connections, N tasks, no retries. */
#include "client_load.h"

#include "client_barrier.h"
#include "client_http.h"
#include "log.h"
#include "task_json.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* CURLOPT_PREREQFUNCTION, which keeps a POST from being sent twice (see
 * client_load_prereq()), came with libcurl 7.80.0. */
#if LIBCURL_VERSION_NUM < 0x075000
#error "clientemulator needs libcurl 7.80.0 or later (CURLOPT_PREREQFUNCTION)"
#endif

#define CLIENT_LOAD_ID_ESC_MAX (6 * 128 + 2) /* a 128-byte id, every byte as \u00XX, quoted */
#define CLIENT_LOAD_BODY_MAX (2 * CLIENT_LOAD_ID_ESC_MAX + 128)

struct client_load_slot {
    CURL *curl;
    uint64_t seq;       /* 0 when the slot is free */
    uint64_t start_us;  /* when it was handed to the multi handle */
    unsigned num_sends; /* times libcurl was about to send this task: 2 is a resend */
    int addr;           /* the address it is pinned to (client_spread), -1 none */
    char answer[32];    /* the first bytes of the answer: {"id":N,... for a 201 */
    size_t answer_len;
    char body[CLIENT_LOAD_BODY_MAX];
    char errbuf[CURL_ERROR_SIZE];
};

/* Keeps the first bytes of the answer, where a 201's body has the task's id. */
static size_t client_load_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    struct client_load_slot *slot = arg;
    size_t len = size * nmemb, room = sizeof(slot->answer) - 1 - slot->answer_len;
    size_t n = len < room ? len : room;
    memcpy(slot->answer + slot->answer_len, data, n);
    slot->answer_len += n;
    slot->answer[slot->answer_len] = '\0';
    return len;
}

/* The id of the stored task, from a 201's body {"id":N,...}; 0 when it is not there. */
static uint64_t client_load_answer_id(const struct client_load_slot *slot)
{
    static const char key[] = "{\"id\":";
    if (strncmp(slot->answer, key, sizeof(key) - 1) != 0)
        return 0;
    const char *p = slot->answer + sizeof(key) - 1;
    uint64_t id = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        id = id * 10 + (uint64_t)(*p - '0');
    return *p == ',' || *p == '}' ? id : 0;
}

/* No task is ever sent twice: "a failed request is not retried".
 *
 * libcurl has one retry of its own. When a reused keep-alive connection turns
 * out to be closed after the request went out and before any byte of answer,
 * it takes that for a server that dropped an idle connection and silently
 * sends the request again on a fresh one. For a POST that hides the failure
 * the class is meant to see, and the server may have stored the first copy.
 * Every attempt passes through this callback just before it is sent, so the
 * second call for one task aborts the transfer (CURLE_ABORTED_BY_CALLBACK)
 * and client_stats counts the task as a reset.
 *
 * Why not a read callback whose seek refuses the rewind (libcurl must rewind
 * the body to resend it): that works too, but then curl writes the body
 * apart from the headers, the server wakes twice per request, and the rate
 * fell by about a third on the 2-core machine. This costs one increment. */
static int client_load_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
                              int local_port)
{
    struct client_load_slot *slot = arg;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    return ++slot->num_sends == 1 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

static void client_load_progress(const struct client_load_config *cfg,
                                 const struct client_stats *st, int last)
{
    enum { WIDTH = 40 };
    char bar[WIDTH + 1];
    uint64_t n = cfg->num_tasks ? cfg->num_tasks : 1;
    size_t fill = (size_t)(st->num_sent * WIDTH / n);
    memset(bar, '#', fill);
    memset(bar + fill, '.', WIDTH - fill);
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %llu/%llu acked %llu failed %llu%s", bar,
            (unsigned long long)st->num_sent, (unsigned long long)cfg->num_tasks,
            (unsigned long long)st->num_acked, (unsigned long long)client_stats_num_failed(st),
            last ? "\n" : "");
    fflush(stderr);
}

/* When task seq is due, in microseconds after the start: bursts of cfg->burst tasks, one
 * burst every cfg->interval_us. */
static uint64_t client_load_tick(const struct client_load_config *cfg, uint64_t seq)
{
    uint64_t burst = cfg->burst ? cfg->burst : 1;
    return (seq - 1) / burst * cfg->interval_us;
}

/* Puts task seq into a free slot and hands it to the multi handle. esc_id is the client id
 * as a JSON string literal (task_json_escape: quotes included, no NUL), esc_len long; the
 * title is the id inside those quotes with "-seq" appended. */
static int client_load_start(CURLM *multi, struct client_spread *spread,
                             struct client_load_slot *slot, const char *esc_id, int esc_len,
                             uint64_t seq)
{
    int n = snprintf(slot->body, sizeof(slot->body),
                     "{\"titulo\":\"%.*s-%llu\",\"cliente\":%.*s,\"seq\":%llu}", esc_len - 2,
                     esc_id + 1, (unsigned long long)seq, esc_len, esc_id, (unsigned long long)seq);
    if (n < 0 || (size_t)n >= sizeof(slot->body))
        return -1; /* the id length was checked against the buffer in run() */
    /* POSTFIELDS points at slot->body (no copy); only its size changes. */
    curl_easy_setopt(slot->curl, CURLOPT_POSTFIELDSIZE, (long)n);
    slot->seq = seq;
    slot->addr = client_spread_pin(spread, slot->curl, seq);
    slot->num_sends = 0;
    slot->answer_len = 0;
    slot->answer[0] = '\0';
    slot->errbuf[0] = '\0';
    slot->start_us = client_http_now_us();
    if (curl_multi_add_handle(multi, slot->curl) != CURLM_OK)
        return -1;
    return 0;
}

/* One run's state, shared by its phases. */
struct client_load_loop {
    const struct client_load_config *cfg;
    struct client_stats *st;
    unsigned char *acked;
    unsigned c; /* slots: cfg->concurrency */
    /* The id as a JSON string literal (quotes included, no NUL), esc_len bytes. */
    char esc_id[CLIENT_LOAD_ID_ESC_MAX];
    int esc_len;
    struct curl_slist *headers;
    struct client_load_slot *slots;
    CURLM *multi;
    uint64_t next_seq; /* the next task to start */
    uint64_t num_done; /* tasks finished, whatever their outcome */
    unsigned num_busy; /* slots with a task in flight */
    uint64_t start;    /* microseconds, when the first task could go */
    uint64_t last_draw;
};

/* Sets up one easy handle for slot s. Returns 0, or -1 with a message logged (errno set). */
static int client_load_setup_slot(struct client_load_loop *l, struct client_load_slot *s)
{
    CURL *e = curl_easy_init();
    if (!e) {
        errno = ENOMEM;
        return -1;
    }
    s->curl = e;
    client_http_common_options(e, l->cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_URL, l->cfg->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, client_load_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, s);
    /* Built against 7.80+, but the libcurl found at run time may be older. */
    if (curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, client_load_prereq) != CURLE_OK) {
        log_error("libcurl %s: no CURLOPT_PREREQFUNCTION (needs 7.80.0): cannot make sure "
                  "that no POST is sent twice",
                  curl_version_info(CURLVERSION_NOW)->version);
        errno = ENOTSUP;
        return -1;
    }
    return 0;
}

/* The escaped client id, the headers, the multi handle and c easy handles. Returns 0, or -1
 * with a message logged and errno set (EINVAL, ENOMEM, ENOTSUP). */
static int client_load_setup(struct client_load_loop *l)
{
    unsigned c = l->c;
    long esc_len = task_json_escape(l->cfg->id, strlen(l->cfg->id), l->esc_id, sizeof(l->esc_id));
    if (esc_len < 0) {
        log_error("client id \"%.32s...\": too long to send", l->cfg->id);
        errno = EINVAL;
        return -1;
    }
    l->esc_len = (int)esc_len;
    l->multi = curl_multi_init();
    l->slots = calloc(c, sizeof(*l->slots));
    l->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (l->headers) {
        struct curl_slist *h = curl_slist_append(l->headers, "Expect:");
        if (h)
            l->headers = h;
    }
    if (!l->multi || !l->slots || !l->headers)
        goto nomem;
    curl_multi_setopt(l->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c);
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)c);
    for (unsigned i = 0; i < c; i++) {
        if (client_load_setup_slot(l, &l->slots[i]) < 0) {
            if (errno == ENOMEM)
                goto nomem;
            return -1;
        }
    }
    return 0;
nomem:
    log_error("POST %s: out of memory setting up %u connections", l->cfg->url, c);
    errno = ENOMEM;
    return -1;
}

/* Starts the tasks that are due in free slots. Returns 0, or -1 with a message logged. */
static int client_load_fill(struct client_load_loop *l)
{
    const struct client_load_config *cfg = l->cfg;
    uint64_t now_us = client_http_now_us();
    for (unsigned i = 0; i < l->c && l->num_busy < l->c && l->next_seq <= cfg->num_tasks; i++) {
        if (l->slots[i].seq)
            continue;
        /* Paced: task seq goes at start + (seq - 1) * interval, on a schedule, not
         * after the previous one, so that clients started together stay in step. */
        if (cfg->interval_us && now_us < l->start + client_load_tick(cfg, l->next_seq))
            break;
        if (client_load_start(l->multi, cfg->spread, &l->slots[i], l->esc_id, l->esc_len,
                              l->next_seq) < 0) {
            log_error("POST %s: could not start the request for seq %llu", cfg->url,
                      (unsigned long long)l->next_seq);
            return -1;
        }
        l->next_seq++;
        l->num_busy++;
    }
    return 0;
}

/* Counts one finished transfer and frees its slot. */
static void client_load_finish_one(struct client_load_loop *l, CURLMsg *msg)
{
    struct client_load_slot *slot;
    struct client_stats *st = l->st;
    long status = 0;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    CURLcode cc = msg->data.result;
    if (cc == CURLE_ABORTED_BY_CALLBACK && slot->num_sends > 1)
        snprintf(slot->errbuf, sizeof(slot->errbuf),
                 "seq %llu: the server closed a reused connection without answering "
                 "(libcurl would have sent the POST again; clientemulator never does)",
                 (unsigned long long)slot->seq);
    uint64_t latency = client_http_now_us() - slot->start_us;
    int ok = client_stats_add(st, (int)cc, status, latency, slot->errbuf) == CLIENT_STATS_OK;
    client_spread_count(l->cfg->spread, slot->addr, ok);
    if (ok) {
        l->acked[(slot->seq - 1) >> 3] |= (unsigned char)(1u << ((slot->seq - 1) & 7));
        uint64_t id = client_load_answer_id(slot);
        if (id > 0 && (st->min_acked_id == 0 || id < st->min_acked_id))
            st->min_acked_id = id;
    }
    curl_multi_remove_handle(l->multi, msg->easy_handle);
    slot->seq = 0;
    l->num_busy--;
    l->num_done++;
}

/* Lets libcurl work, then counts what finished. Returns the number of slots freed, or -1
 * with a message logged. */
static long client_load_reap(struct client_load_loop *l)
{
    int still, left;
    long freed = 0;
    CURLMsg *msg;
    CURLMcode mc = curl_multi_perform(l->multi, &still);
    if (mc != CURLM_OK) {
        log_error("POST %s: curl_multi_perform: %s", l->cfg->url, curl_multi_strerror(mc));
        return -1;
    }
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        client_load_finish_one(l, msg);
        freed++;
    }
    return freed;
}

/* Waits for sockets, at most 100 ms, or until the next paced task is due. Returns 0, or -1
 * with a message logged. */
static int client_load_wait(struct client_load_loop *l)
{
    const struct client_load_config *cfg = l->cfg;
    int wait_ms = 100;
    if (cfg->interval_us && l->next_seq <= cfg->num_tasks && l->num_busy < l->c) {
        uint64_t due = l->start + client_load_tick(cfg, l->next_seq), now = client_http_now_us();
        uint64_t ms = due > now ? (due - now + 999) / 1000 : 0;
        wait_ms = ms < 100 ? (int)ms : 100;
    }
    CURLMcode mc = curl_multi_poll(l->multi, NULL, 0, wait_ms, NULL);
    if (mc != CURLM_OK) {
        log_error("POST %s: curl_multi_poll: %s", cfg->url, curl_multi_strerror(mc));
        return -1;
    }
    return 0;
}

/* Sends every task: start what is due, count what finished, wait. Returns 0 or -1. */
static int client_load_loop_run(struct client_load_loop *l)
{
    const struct client_load_config *cfg = l->cfg;
    while (l->num_done < cfg->num_tasks) {
        if (client_load_fill(l) < 0)
            return -1;
        long freed = client_load_reap(l);
        if (freed < 0)
            return -1;
        if (cfg->progress) {
            uint64_t now = client_http_now_us();
            if (now - l->last_draw > 100000) {
                client_load_progress(cfg, l->st, 0);
                l->last_draw = now;
            }
        }
        if (l->num_done == cfg->num_tasks || (freed && l->next_seq <= cfg->num_tasks))
            continue;
        if (client_load_wait(l) < 0)
            return -1;
    }
    return 0;
}

static void client_load_release(struct client_load_loop *l)
{
    for (unsigned i = 0; l->slots && i < l->c; i++) {
        if (!l->slots[i].curl)
            continue;
        if (l->slots[i].seq)
            curl_multi_remove_handle(l->multi, l->slots[i].curl);
        curl_easy_cleanup(l->slots[i].curl);
    }
    free(l->slots);
    if (l->multi)
        curl_multi_cleanup(l->multi);
    curl_slist_free_all(l->headers);
}

int client_load_run(const struct client_load_config *cfg, struct client_stats *st,
                    unsigned char *acked)
{
    int rc = -1, saved;
    struct client_load_loop l = {
        .cfg = cfg, .st = st, .acked = acked, .c = cfg->concurrency, .next_seq = 1};
    if (client_load_setup(&l) < 0)
        goto done;
    if (cfg->ready && cfg->ready(cfg->ready_arg) < 0)
        goto done;
    st->start_ns = client_barrier_now_ns();
    l.start = client_http_now_us();
    if (client_load_loop_run(&l) < 0)
        goto done;
    st->end_ns = client_barrier_now_ns();
    client_stats_finish(st, client_http_now_us() - l.start);
    if (cfg->progress)
        client_load_progress(cfg, st, 1);
    rc = 0;
done:
    saved = errno;
    client_load_release(&l);
    errno = saved;
    return rc;
}
