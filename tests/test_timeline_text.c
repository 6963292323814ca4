/* test_timeline_text.c - taskctl timeline --text on hand-made traces (lost tasks overwritten and
 * cut off, the notes on how a worker's trace ended), and the trace writer where it stops: a
 * failed or empty write (tests/shim_fault.c, linked in), the event cap, a full buffer, a title
 * cut inside a UTF-8 character, negative numbers. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim_fault.h"
#include "task_json.h"
#include "timeline_text.h"
#include "trace.h"
#include "trace_match.h"
#include "trace_read.h"
#include "test_tmp.h"

#define HDR(pid, w, lk)                                                                            \
    "# taskserver-trace 1 pid=" #pid " worker=" #w " locking=" lk " max_events=99\n"

/* ---- the text ---- */

/* The text of the case's files, read, merged and analyzed (free it). */
static char *render(const char *const *files, size_t n)
{
    struct trace_set set;
    struct trace_analysis an;
    char err[256], name[32];
    trace_set_init(&set);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "case-%zu.trace", i);
        int rc = trace_set_read_text(&set, name, files[i], strlen(files[i]), err, sizeof(err));
        ck_assert_msg(rc == 0, "%s: %s", name, err);
    }
    trace_set_merge(&set);
    ck_assert_int_eq(trace_analyze(&set, &an), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(timeline_text_write(f, &set, &an), 0);
    fclose(f);
    trace_analysis_free(&an);
    trace_set_free(&set);
    return text;
}

/* The lines of text that start with prefix, joined by '|'. */
static const char *lines_with(const char *text, const char *prefix)
{
    static char out[2048];
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            ck_assert_uint_lt(used + 1 + len, sizeof(out));
            if (used > 0)
                out[used++] = '|';
            memcpy(out + used, p, len);
            used += len;
            out[used] = '\0';
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return out;
}

static const struct {
    const char *desc;
    const char *files[3];
    const char *lost;  /* the "lost:" lines, '|'-joined */
    const char *notes; /* the "note:" lines */
} text_cases[] = {
    {"two writers read the same end: the later write wins",
     {HDR(101, 0, "off") "1000 tail_read offset=100 id=5\n"
                         "1500 write offset=100 length=90 id=6 titulo=\"a6\" cliente=\"ana\"\n"
                         "# end events=2\n",
      HDR(102, 1, "off") "1100 tail_read offset=100 id=5\n"
                         "1600 write offset=100 length=90 id=6 titulo=\"b6\" cliente=\"bea\"\n"
                         "# end events=2\n"},
     "lost: \"a6\" from \"ana\" (id 6) written by worker 0 at byte 100, overwritten by \"b6\" "
     "(id 6) of worker 1 at byte 100; both read the end at byte 100",
     ""},
    {"a torn read: they read the end at different bytes; control bytes shown as '?'",
     {HDR(101, 0, "off") "1000 tail_read offset=100 id=5\n"
                         "1300 write offset=100 length=100 id=6 titulo=\"lo\\x01ng\" "
                         "cliente=\"\\x7f\"\n"
                         "# end events=2\n",
      HDR(102, 1, "off") "1100 tail_read offset=150 id=5\n"
                         "1400 write offset=150 length=100 id=6 titulo=\"mid\" cliente=\"\"\n"
                         "# end events=2\n"},
     "lost: \"lo?ng\" from \"?\" (id 6) written by worker 0 at byte 100, overwritten by \"mid\" "
     "(id 6) of worker 1 at byte 150; they read the end at bytes 100 and 150",
     ""},
    {"cut off by a truncation another worker then found; traces that ended badly",
     {HDR(101, 0, "off") "100000 tail_read offset=100 id=5\n"
                         "200000 write offset=100 length=90 id=6 titulo=\"a\" cliente=\"\"\n"
                         "300000 tail_read offset=187 id=6\n"
                         "400000 write offset=187 length=90 id=7 titulo=\"b\" cliente=\"\"\n"
                         "# stopped: event cap 4 reached\n"
                         "# end events=4\n",
      HDR(102, 1, "off") "500000 tail_read offset=187 id=6\n"
                         "610000 write offset=187 length=90 id=7 titulo=\"d\" cliente=\"\"\n"
                         "640000 tail_read offset=150 id=5\n"
                         "64",
      HDR(103, 2, "off") "700000 response status=201\n"},
     "lost: \"a\" from \"\" (id 6) written by worker 0 at byte 100, cut off: worker 1 then found "
     "the end at byte 150 (truncated)|"
     "lost: \"b\" from \"\" (id 7) written by worker 0 at byte 187, cut off: worker 1 then found "
     "the end at byte 187 (truncated)",
     "note: worker 0 (pid 101): trace stopped at its event cap|"
     "note: worker 1 (pid 102): a torn last line was skipped|"
     "note: worker 1 (pid 102): no end line (still running, or killed)|"
     "note: worker 2 (pid 103): no end line (still running, or killed)"},
};

START_TEST(test_text)
{
    size_t n = 0;
    while (n < 3 && text_cases[_i].files[n] != NULL)
        n++;
    char *text = render(text_cases[_i].files, n);
    ck_assert_msg(strcmp(lines_with(text, "lost: "), text_cases[_i].lost) == 0,
                  "%s: lost lines:\n%s\nexpected:\n%s", text_cases[_i].desc,
                  lines_with(text, "lost: "), text_cases[_i].lost);
    ck_assert_msg(strcmp(lines_with(text, "note: "), text_cases[_i].notes) == 0,
                  "%s: note lines:\n%s\nexpected:\n%s", text_cases[_i].desc,
                  lines_with(text, "note: "), text_cases[_i].notes);
    free(text);
}
END_TEST

/* ---- the writer ---- */

static char tmp_dir[256];

static void setup(void)
{
    test_tmp_dir(tmp_dir, sizeof(tmp_dir), "timeline");
    shim_fault_set(NULL);
}

static void teardown(void)
{
    shim_fault_set(NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmp_dir);
}

static void read_back(struct trace_set *set)
{
    char err[256];
    trace_set_init(set);
    ck_assert_msg(trace_set_read_dir(set, tmp_dir, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(set->num_workers, 1);
}

/* stderr into a file while f runs; returns what was written there (free it). */
static char *captured(void (*f)(struct trace *), struct trace *tr)
{
    char path[300];
    snprintf(path, sizeof(path), "%s.stderr", tmp_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    f(tr);
    ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    char *text = calloc(1, 8192);
    ck_assert_int_ge(fread(text, 1, 8191, in), 0);
    fclose(in);
    unlink(path);
    return text;
}

static void turn_idle(struct trace *tr)
{
    trace_turn(tr, 1);
}

static void do_close(struct trace *tr)
{
    trace_close(tr);
}

/* The header cannot be written: no trace, and the reason. */
START_TEST(test_open_write_fails)
{
    char err[512];
    ck_assert_int_eq(shim_fault_set("write=ENOSPC,has=/worker-"), 0);
    errno = 0;
    struct trace *tr = trace_open(tmp_dir, 0, 10, err, sizeof(err));
    ck_assert_uint_eq(shim_fault_hits(), 1);
    shim_fault_set(NULL);
    ck_assert_ptr_null(tr);
    ck_assert_int_eq(errno, EIO);
    char want[512];
    snprintf(want, sizeof(want), "%s/worker-%ld.trace: write: No space left on device", tmp_dir,
             (long)getpid());
    ck_assert_str_eq(err, want);
}
END_TEST

/* A write that fails later stops the trace, logged once; serving is not the trace's concern. */
static const struct {
    const char *rule;
    const char *reason;
} write_failures[] = {
    {"write=EIO,has=/worker-", "write: Input/output error"},
    {"write=0,has=/worker-", "write: wrote nothing"},
};

START_TEST(test_write_fails_later)
{
    char err[512];
    struct trace *tr = trace_open(tmp_dir, 3, 100, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    trace_response(tr, 201);
    ck_assert_int_eq(shim_fault_set(write_failures[_i].rule), 0);
    char *log = captured(turn_idle, tr);
    ck_assert_uint_eq(shim_fault_hits(), 1);
    shim_fault_set(NULL);
    char want[700];
    snprintf(want, sizeof(want), "trace %s/worker-%ld.trace: %s: tracing stopped", tmp_dir,
             (long)getpid(), write_failures[_i].reason);
    ck_assert_msg(strstr(log, want) != NULL, "expected \"%s\" in \"%s\"", want, log);
    free(log);
    /* Stopped: later events are not written, the end line neither, nothing logged again. */
    trace_response(tr, 202);
    log = captured(turn_idle, tr);
    ck_assert_str_eq(log, "");
    free(log);
    log = captured(do_close, tr);
    ck_assert_str_eq(log, "");
    free(log);
    struct trace_set set;
    read_back(&set);
    ck_assert_uint_eq(set.num_events, 0);
    ck_assert_int_eq(set.workers[0].ended, 0);
    trace_set_free(&set);
}
END_TEST

/* EINTR is written again. */
START_TEST(test_write_eintr)
{
    char err[512];
    struct trace *tr = trace_open(tmp_dir, 0, 100, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    trace_response(tr, 201);
    ck_assert_int_eq(shim_fault_set("write=EINTR,has=/worker-,times=1"), 0);
    trace_turn(tr, 1);
    ck_assert_uint_eq(shim_fault_hits(), 1);
    shim_fault_set(NULL);
    trace_close(tr);
    struct trace_set set;
    read_back(&set);
    ck_assert_uint_eq(set.num_events, 1);
    ck_assert_int_eq(set.events[0].status, 201);
    ck_assert_int_eq(set.workers[0].ended, 1);
    trace_set_free(&set);
}
END_TEST

/* The cap reached and never a turn after it: trace_close() says so. */
START_TEST(test_cap_logged_at_close)
{
    char err[512];
    struct trace *tr = trace_open(tmp_dir, 0, 2, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    for (int i = 0; i < 5; i++)
        trace_response(tr, 200 + i);
    char *log = captured(do_close, tr);
    char want[600];
    snprintf(want, sizeof(want),
             "trace %s/worker-%ld.trace: event cap 2 reached (--trace-max-events): tracing stopped",
             tmp_dir, (long)getpid());
    ck_assert_msg(strstr(log, want) != NULL, "expected \"%s\" in \"%s\"", want, log);
    free(log);
    struct trace_set set;
    read_back(&set);
    ck_assert_uint_eq(set.num_events, 2);
    ck_assert_int_eq(set.workers[0].capped, 1);
    ck_assert_int_eq(set.workers[0].ended, 1);
    trace_set_free(&set);
}
END_TEST

/* More than the buffer holds between two turns: written as it fills, nothing lost. */
START_TEST(test_buffer_full)
{
    char err[512];
    enum { N = 20000 };
    struct trace *tr = trace_open(tmp_dir, 0, N, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    for (int i = 0; i < N; i++)
        trace_response(tr, 100 + i % 500);
    trace_close(tr);
    struct trace_set set;
    read_back(&set);
    ck_assert_uint_eq(set.num_events, N);
    for (size_t i = 0; i < set.num_events; i++)
        ck_assert_int_eq(set.events[i].status, 100 + (int)(i % 500));
    trace_set_free(&set);
}
END_TEST

/* Lock timeouts and negative numbers (a clock that went back) survive the round trip; a
 * title is cut before a character that does not fit whole. */
START_TEST(test_round_trip_edges)
{
    static struct task t;
    char err[512];
    memset(&t, 0, sizeof(t));
    /* 61 ASCII bytes, then "ñ" x4: the 64-byte cut falls inside the second "ñ". */
    memset(t.titulo, 'x', 61);
    memcpy(t.titulo + 61, "\xc3\xb1\xc3\xb1\xc3\xb1\xc3\xb1", 8);
    t.titulo_len = 69;
    static char line[TASK_JSON_RECORD_MAX];
    struct task_meta meta = {1, 0, 1, NULL};
    long line_len = task_json_encode_record(&t, &meta, line, sizeof(line));
    ck_assert_int_gt(line_len, 0);
    char what[80];
    memset(what, 'w', 61);
    snprintf(what + 61, sizeof(what) - 61, "\xc3\xb1\xc3\xb1\xc3\xb1");
    struct trace *tr = trace_open(tmp_dir, 0, 100, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    struct task_store_event evs[] = {
        {.kind = TASK_STORE_EV_LOCK_WAIT, .t_ns = 100, .lock_type = F_RDLCK},
        {.kind = TASK_STORE_EV_LOCK_TIMEOUT, .t_ns = 200, .lock_type = F_RDLCK, .duration_ns = 100},
        {.kind = TASK_STORE_EV_LOCK_GRANTED, .t_ns = 300, .lock_type = F_WRLCK, .duration_ns = -7},
        {.kind = TASK_STORE_EV_WRITE,
         .t_ns = 310,
         .offset = 2,
         .length = 120,
         .id = 1,
         .line = line,
         .line_len = (size_t)line_len},
        {.kind = TASK_STORE_EV_UNLOCK, .t_ns = 320, .lock_type = F_WRLCK, .duration_ns = 20},
        /* The writer cuts any text itself (a record's fields come cut already). */
        {.kind = TASK_STORE_EV_OUTSIDE, .t_ns = 330, .what = what},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        trace_store_event(tr, &evs[i]);
    trace_close(tr);
    struct trace_set set;
    read_back(&set);
    ck_assert_uint_eq(set.num_events, 6);
    ck_assert_int_eq(set.events[5].kind, TRACE_OUTSIDE);
    ck_assert_uint_eq(strlen(set.events[5].what), 63);
    ck_assert_int_eq(memcmp(set.events[5].what + 61, "\xc3\xb1", 2), 0);
    ck_assert_int_eq(set.events[1].kind, TRACE_LOCK_TIMEOUT);
    ck_assert_int_eq(set.events[1].lock, 'r');
    ck_assert_int_eq(set.events[1].dur_ns, 100);
    ck_assert_int_eq(set.events[2].kind, TRACE_LOCK_GRANTED);
    ck_assert_int_eq(set.events[2].dur_ns, -7);
    ck_assert_int_eq(set.events[3].kind, TRACE_WRITE);
    ck_assert_uint_eq(strlen(set.events[3].titulo), 63);
    ck_assert_int_eq(memcmp(set.events[3].titulo + 61, "\xc3\xb1", 2), 0);
    trace_set_free(&set);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("timeline_text");
    TCase *tc = tcase_create("text");
    tcase_add_loop_test(tc, test_text, 0, sizeof(text_cases) / sizeof(text_cases[0]));
    suite_add_tcase(su, tc);
    TCase *tw = tcase_create("writer");
    tcase_add_checked_fixture(tw, setup, teardown);
    tcase_add_test(tw, test_open_write_fails);
    tcase_add_loop_test(tw, test_write_fails_later, 0,
                        sizeof(write_failures) / sizeof(write_failures[0]));
    tcase_add_test(tw, test_write_eintr);
    tcase_add_test(tw, test_cap_logged_at_close);
    tcase_add_test(tw, test_buffer_full);
    tcase_add_test(tw, test_round_trip_edges);
    suite_add_tcase(su, tw);
    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_timeline_text");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
