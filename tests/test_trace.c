/* test_trace.c - the trace writer, the reader and the lost-update matcher, on hand-made traces. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "task_store.h"
#include "timeline_svg.h"
#include "trace.h"
#include "trace_match.h"
#include "trace_read.h"
#include "test_tmp.h"

#define HDR(pid, w, lk)                                                                            \
    "# taskserver-trace 1 pid=" #pid " worker=" #w " locking=" lk " max_events=99\n"

/* ---- the matcher: a table of runs, each a few workers' files ---- */

struct matcher_case {
    const char *desc;
    const char *files[4];
    size_t writes;
    size_t lost;
    const char *pairs; /* "lost>overwriter" by titulo, sorted, ';'-separated */
    size_t overlapping_holds;
    size_t overlapping_sections;
    size_t reads_without_write;
    size_t holds;
};

static const struct matcher_case matcher_cases[] = {
    {"no overlap: two locked appends one after the other",
     {HDR(101, 0, "on") "1000 lock_wait lock=w\n"
                        "1010 lock_granted lock=w wait_ns=10\n"
                        "1020 tail_read offset=2 id=0\n"
                        "1100 write offset=2 length=80 id=1 titulo=\"a1\" cliente=\"a\"\n"
                        "1110 unlock lock=w hold_ns=100\n"
                        "1120 response status=201\n",
      HDR(102, 1, "on") "1005 lock_wait lock=w\n"
                        "1200 lock_granted lock=w wait_ns=195\n"
                        "1210 tail_read offset=79 id=1\n"
                        "1300 write offset=79 length=82 id=2 titulo=\"b1\" cliente=\"b\"\n"
                        "1310 unlock lock=w hold_ns=110\n"
                        "1320 response status=201\n"},
     2,
     0,
     "",
     0,
     0,
     0,
     2},
    {"one overlap: two writers read the same end, the later write wins",
     {HDR(101, 0, "off") "1000 tail_read offset=100 id=5\n"
                         "1500 write offset=100 length=90 id=6 titulo=\"a6\" cliente=\"a\"\n"
                         "1510 response status=201\n",
      HDR(102, 1, "off") "1100 tail_read offset=100 id=5\n"
                         "1600 write offset=100 length=90 id=6 titulo=\"b6\" cliente=\"b\"\n"
                         "1610 response status=201\n"},
     2,
     1,
     "a6>b6",
     0,
     1,
     0,
     0},
    {"three writers at one offset: each but the last lost to the next",
     {HDR(101, 0, "off") "1000 tail_read offset=100 id=5\n"
                         "1500 write offset=100 length=90 id=6 titulo=\"a\" cliente=\"\"\n",
      HDR(102, 1, "off") "1100 tail_read offset=100 id=5\n"
                         "1600 write offset=100 length=88 id=6 titulo=\"b\" cliente=\"\"\n",
      HDR(103, 2, "off") "1200 tail_read offset=100 id=5\n"
                         "1700 write offset=100 length=92 id=6 titulo=\"c\" cliente=\"\"\n"},
     3,
     2,
     "a>b;b>c",
     0,
     3,
     0,
     0},
    {"torn write: a read in the middle of a write, then a dead writer and a torn last line",
     {HDR(101, 0, "off") "1000 tail_read offset=100 id=5\n"
                         "1300 write offset=100 length=100 id=6 titulo=\"long\" cliente=\"\"\n",
      HDR(102, 1, "off") "1100 tail_read offset=150 id=5\n"
                         "1400 write offset=150 length=100 id=6 titulo=\"mid\" cliente=\"\"\n"
                         "1500 tail_read offset=247 id=6\n"
                         "1600 write offset=247 length=90 id=7 titulo=\"next\" cliente=\"\"\n",
      HDR(103, 2, "off") "1650 tail_read offset=334 id=7\n"
                         "17"},
     3,
     1,
     "long>mid",
     0,
     1,
     1,
     0},
    {"a shorter record landing last still destroys the longer one; the next append is safe",
     {HDR(101, 0, "off") "1000 tail_read offset=100 id=5\n"
                         "1500 write offset=100 length=110 id=6 titulo=\"longer\" cliente=\"\"\n"
                         "1700 tail_read offset=197 id=6\n"
                         "1800 write offset=197 length=100 id=7 titulo=\"after\" cliente=\"\"\n",
      HDR(102, 1, "off") "1100 tail_read offset=100 id=5\n"
                         "1600 write offset=100 length=100 id=6 titulo=\"short\" cliente=\"\"\n"},
     3,
     1,
     "longer>short",
     0,
     1,
     0,
     0},
    {"the first record (no \",\\n\" in front) overwritten at offset 2",
     {HDR(101, 0, "off") "1000 tail_read offset=2 id=0\n"
                         "1500 write offset=2 length=80 id=1 titulo=\"first\" cliente=\"\"\n",
      HDR(102, 1, "off") "1100 tail_read offset=2 id=0\n"
                         "1600 write offset=2 length=80 id=1 titulo=\"second\" cliente=\"\"\n"
                         "1700 tail_read offset=79 id=1\n"
                         "1800 write offset=79 length=82 id=2 titulo=\"third\" cliente=\"\"\n"},
     3,
     1,
     "first>second",
     0,
     1,
     0,
     0},
    {"events out of order across workers: worker 0's file lists the later write",
     {HDR(101, 0, "off") "1900 tail_read offset=100 id=5\n"
                         "2000 write offset=100 length=90 id=6 titulo=\"a\" cliente=\"\"\n",
      HDR(102, 1, "off") "1000 tail_read offset=100 id=5\n"
                         "1500 write offset=100 length=90 id=6 titulo=\"b\" cliente=\"\"\n"},
     2,
     1,
     "b>a",
     0,
     0,
     0,
     0},
    {"cut off: a tail read finds the file shorter than a record written before it",
     {HDR(101, 0, "off") "100000 tail_read offset=100 id=5\n"
                         "200000 write offset=100 length=90 id=6 titulo=\"a\" cliente=\"\"\n"
                         "300000 tail_read offset=187 id=6\n"
                         "400000 write offset=187 length=90 id=7 titulo=\"b\" cliente=\"\"\n"
                         "600000 tail_read offset=274 id=7\n"
                         "630000 write offset=274 length=90 id=8 titulo=\"c\" cliente=\"\"\n",
      HDR(102, 1, "off") "500000 tail_read offset=187 id=6\n"
                         "610000 write offset=187 length=90 id=7 titulo=\"d\" cliente=\"\"\n"
                         "640000 tail_read offset=274 id=7\n"
                         "700000 write offset=274 length=90 id=8 titulo=\"e\" cliente=\"\"\n"},
     5,
     2,
     "b>cut;c>e",
     0,
     1,
     0,
     0},
    {"a broken lock: two write holds at once",
     {HDR(101, 0, "on") "990 lock_wait lock=w\n"
                        "1000 lock_granted lock=w wait_ns=10\n"
                        "1010 tail_read offset=100 id=5\n"
                        "1100 write offset=100 length=90 id=6 titulo=\"a\" cliente=\"\"\n"
                        "1200 unlock lock=w hold_ns=200\n",
      HDR(102, 1, "on") "995 lock_wait lock=w\n"
                        "1050 lock_granted lock=w wait_ns=55\n"
                        "1060 tail_read offset=100 id=5\n"
                        "1150 write offset=100 length=90 id=6 titulo=\"b\" cliente=\"\"\n"
                        "1250 unlock lock=w hold_ns=200\n"},
     2,
     1,
     "a>b",
     1,
     1,
     0,
     2},
    {"scheduling jitter: a release noted after the next grant is no overlap",
     {HDR(101, 0, "on") "990 lock_wait lock=w\n"
                        "1000 lock_granted lock=w wait_ns=10\n"
                        "1010 tail_read offset=100 id=5\n"
                        "1100 write offset=100 length=90 id=6 titulo=\"a\" cliente=\"\"\n"
                        "1300 unlock lock=w hold_ns=300\n",
      HDR(102, 1, "on") "995 lock_wait lock=w\n"
                        "1200 lock_granted lock=w wait_ns=205\n"
                        "1210 tail_read offset=187 id=6\n"
                        "1400 write offset=187 length=90 id=7 titulo=\"b\" cliente=\"\"\n"
                        "1500 unlock lock=w hold_ns=300\n"},
     2,
     0,
     "",
     0,
     0,
     0,
     2},
    {"read locks share; a timeout is a wait without a hold",
     {HDR(101, 0, "on") "1000 lock_wait lock=r\n"
                        "1010 lock_granted lock=r wait_ns=10\n"
                        "1100 unlock lock=r hold_ns=90\n"
                        "1200 lock_wait lock=w\n"
                        "5200 lock_timeout lock=w wait_ns=4000\n"
                        "5210 response status=503\n",
      HDR(102, 1, "on") "1005 lock_wait lock=r\n"
                        "1020 lock_granted lock=r wait_ns=15\n"
                        "1090 unlock lock=r hold_ns=70\n"},
     0,
     0,
     "",
     0,
     0,
     0,
     2},
    {"a write hold over a read grant is an overlap",
     {HDR(101, 0, "on") "1000 lock_wait lock=w\n"
                        "1005 lock_granted lock=w wait_ns=5\n"
                        "1006 tail_read offset=2 id=0\n"
                        "1060 write offset=2 length=80 id=1 titulo=\"a\" cliente=\"\"\n"
                        "1070 unlock lock=w hold_ns=65\n",
      HDR(102, 1, "on") "1001 lock_wait lock=r\n"
                        "1010 lock_granted lock=r wait_ns=9\n"
                        "1090 unlock lock=r hold_ns=80\n"},
     1,
     0,
     "",
     1,
     0,
     0,
     2},
    {"a grant without its wait line (the trace began mid-wait): one hold, one write",
     {HDR(101, 0, "on") "1010 lock_granted lock=w wait_ns=10\n"
                        "1020 tail_read offset=2 id=0\n"
                        "1100 write offset=2 length=80 id=1 titulo=\"a1\" cliente=\"a\"\n"
                        "1110 unlock lock=w hold_ns=100\n"
                        "1120 response status=201\n"},
     1,
     0,
     "",
     0,
     0,
     0,
     1},
    {"unlocked: a read whose append failed, then a read and its write",
     {HDR(101, 0, "off") "1000 tail_read offset=2 id=0\n"
                         "1100 tail_read offset=2 id=0\n"
                         "1200 write offset=2 length=80 id=1 titulo=\"a\" cliente=\"a\"\n"
                         "1300 response status=201\n"},
     1,
     0,
     "",
     0,
     0,
     1,
     0},
    {"unlocked: a read answered with an error, nothing written",
     {HDR(101, 0, "off") "1000 tail_read offset=2 id=0\n"
                         "1010 response status=507\n"},
     0,
     0,
     "",
     0,
     0,
     1,
     0},
    {"a trace with no events", {HDR(101, 0, "on")}, 0, 0, "", 0, 0, 0, 0},
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the case's files into set, merges and analyzes. */
static void load(const char *const *files, struct trace_set *set, struct trace_analysis *an)
{
    char err[256], name[32];
    trace_set_init(set);
    for (size_t i = 0; i < 4 && files[i] != NULL; i++) {
        snprintf(name, sizeof(name), "case-%zu.trace", i);
        int rc = trace_set_read_text(set, name, files[i], strlen(files[i]), err, sizeof(err));
        ck_assert_msg(rc == 0, "%s: %s", name, err);
    }
    trace_set_merge(set);
    ck_assert_int_eq(trace_analyze(set, an), 0);
}

START_TEST(test_matcher)
{
    const struct matcher_case *tc = &matcher_cases[_i];
    struct trace_set set;
    struct trace_analysis an;
    char *pairs[16];
    size_t num_pairs = 0;
    char got[512] = "";

    load(tc->files, &set, &an);
    for (size_t i = 0; i < an.num_appends; i++) {
        const struct trace_append *a = &an.appends[i];
        if (!a->lost)
            continue;
        const struct trace_event *w = &set.events[a->write_ev];
        if (a->overwritten_by == TRACE_NONE) {
            ck_assert_msg(a->cut_by != TRACE_NONE, "%s: lost, neither overwritten nor cut",
                          tc->desc);
            const struct trace_event *r = &set.events[an.appends[a->cut_by].read_ev];
            ck_assert_msg(r->t_ns > w->t_ns && r->offset < w->offset + w->length - 3,
                          "%s: the cut read does not show the record gone", tc->desc);
            size_t n = strlen(w->titulo) + 8;
            pairs[num_pairs] = malloc(n);
            ck_assert_ptr_nonnull(pairs[num_pairs]);
            snprintf(pairs[num_pairs], n, "%s>cut", w->titulo);
            num_pairs++;
            continue;
        }
        const struct trace_append *by = &an.appends[a->overwritten_by];
        /* The overwriter wrote later, over the lost record's bytes. */
        const struct trace_event *bw = &set.events[by->write_ev];
        ck_assert_msg(bw->t_ns > w->t_ns, "%s: overwriter earlier than the lost write", tc->desc);
        ck_assert_msg(bw->offset < w->offset + w->length - 3 && w->offset < bw->offset + bw->length,
                      "%s: overwriter does not cover the record", tc->desc);
        size_t n = strlen(w->titulo) + strlen(bw->titulo) + 2;
        pairs[num_pairs] = malloc(n);
        ck_assert_ptr_nonnull(pairs[num_pairs]);
        snprintf(pairs[num_pairs], n, "%s>%s", w->titulo, bw->titulo);
        num_pairs++;
    }
    qsort(pairs, num_pairs, sizeof(*pairs), cmp_str);
    for (size_t i = 0; i < num_pairs; i++) {
        if (i > 0)
            strcat(got, ";");
        strcat(got, pairs[i]);
        free(pairs[i]);
    }
    ck_assert_msg(an.num_writes == tc->writes, "%s: writes expected %zu, got %zu", tc->desc,
                  tc->writes, an.num_writes);
    ck_assert_msg(an.num_lost == tc->lost, "%s: lost expected %zu, got %zu", tc->desc, tc->lost,
                  an.num_lost);
    ck_assert_msg(strcmp(got, tc->pairs) == 0, "%s: pairs expected \"%s\", got \"%s\"", tc->desc,
                  tc->pairs, got);
    ck_assert_msg(an.num_overlapping_holds == tc->overlapping_holds,
                  "%s: overlapping holds expected %zu, got %zu", tc->desc, tc->overlapping_holds,
                  an.num_overlapping_holds);
    ck_assert_msg(an.num_overlapping_sections == tc->overlapping_sections,
                  "%s: overlapping sections expected %zu, got %zu", tc->desc,
                  tc->overlapping_sections, an.num_overlapping_sections);
    ck_assert_msg(an.all.reads_without_write == tc->reads_without_write,
                  "%s: reads without write expected %zu, got %zu", tc->desc,
                  tc->reads_without_write, an.all.reads_without_write);
    ck_assert_msg(an.all.holds == tc->holds, "%s: holds expected %zu, got %zu", tc->desc, tc->holds,
                  an.all.holds);

    /* The picture has as many lost marks as the matcher found, each with a title. */
    char *svg = NULL;
    size_t svg_len = 0;
    FILE *f = open_memstream(&svg, &svg_len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(timeline_svg_write(f, &set, &an), 0);
    fclose(f);
    size_t marks = 0;
    for (const char *p = svg; (p = strstr(p, "<g class=\"lost\"")) != NULL; p++) {
        marks++;
        const char *close = strchr(p, '>');
        ck_assert_msg(close != NULL && strncmp(close + 1, "<title>lost task \"", 18) == 0,
                      "%s: a lost mark without its title", tc->desc);
    }
    ck_assert_msg(marks == tc->lost, "%s: %zu lost marks for %zu lost", tc->desc, marks, tc->lost);
    free(svg);
    trace_analysis_free(&an);
    trace_set_free(&set);
}
END_TEST

/* Unlocked appends that fail: the error answer belongs to the read that had no write, and a
 * read again without a write leaves the first one unanswered and the second one answered. */
START_TEST(test_failed_appends_answered)
{
    static const char *const texts[] = {
        HDR(101, 0, "off") "1000 tail_read offset=2 id=0\n1010 response status=507\n",
        HDR(101, 0, "off") "1000 tail_read offset=2 id=0\n1100 tail_read offset=2 id=0\n"
                           "1200 write offset=2 length=80 id=1 titulo=\"a\" cliente=\"a\"\n"
                           "1300 response status=500\n1400 response status=201\n",
    };
    for (size_t k = 0; k < 2; k++) {
        struct trace_set set;
        struct trace_analysis an;
        char err[256];
        trace_set_init(&set);
        ck_assert_int_eq(
            trace_set_read_text(&set, "x.trace", texts[k], strlen(texts[k]), err, sizeof(err)), 0);
        trace_set_merge(&set);
        ck_assert_int_eq(trace_analyze(&set, &an), 0);
        if (k == 0) {
            ck_assert_uint_eq(an.num_appends, 1);
            ck_assert(an.appends[0].write_ev == TRACE_NONE);
            ck_assert(an.appends[0].response_ev != TRACE_NONE);
            ck_assert_int_eq(set.events[an.appends[0].response_ev].status, 507);
        } else {
            ck_assert_uint_eq(an.num_appends, 2);
            ck_assert(an.appends[0].write_ev == TRACE_NONE);
            ck_assert(an.appends[1].write_ev != TRACE_NONE);
            ck_assert(an.appends[0].response_ev != TRACE_NONE);
            ck_assert(an.appends[1].response_ev != TRACE_NONE);
            ck_assert_int_eq(set.events[an.appends[0].response_ev].status, 500);
            ck_assert_int_eq(set.events[an.appends[1].response_ev].status, 201);
        }
        trace_analysis_free(&an);
        trace_set_free(&set);
    }
}
END_TEST

/* The hold and wait figures of the "no overlap" case, by hand. */
START_TEST(test_stats)
{
    struct trace_set set;
    struct trace_analysis an;
    load(matcher_cases[0].files, &set, &an);
    ck_assert_uint_eq(set.num_workers, 2);
    ck_assert_int_eq(set.locking, 1);
    ck_assert_int_eq(an.workers[0].wait_total_ns, 10);
    ck_assert_int_eq(an.workers[0].hold_total_ns, 100);
    ck_assert_int_eq(an.workers[1].wait_total_ns, 195);
    ck_assert_int_eq(an.all.wait_p50_ns, 10);
    ck_assert_int_eq(an.all.wait_p99_ns, 195);
    ck_assert_int_eq(an.all.hold_total_ns, 210);
    ck_assert_uint_eq(an.all.responses, 2);
    ck_assert_int_eq(an.t_first, 1000);
    ck_assert_int_eq(an.t_last, 1320);
    for (size_t i = 0; i < an.num_appends; i++) {
        ck_assert(an.appends[i].hold != TRACE_NONE);
        ck_assert(an.appends[i].response_ev != TRACE_NONE);
        ck_assert_int_eq(set.events[an.appends[i].response_ev].status, 201);
    }
    trace_analysis_free(&an);
    trace_set_free(&set);
}
END_TEST

/* ---- the reader ---- */

struct reader_case {
    const char *text;
    int ok;
    const char *err_has; /* when not ok */
    const char *desc;
};

static const struct reader_case reader_cases[] = {
    {"hello\n", 0, "not a taskserver trace", "not a trace"},
    {"", 0, "empty file", "empty"},
    {"# taskserver-trace 2 pid=1 worker=0 locking=on\n", 0, "version 2", "a later version"},
    {"# taskserver-trace 1 worker=0 locking=on\n", 0, "lacks pid", "no pid"},
    {"# taskserver-trace 1 pid=5 worker=0 locking=maybe\n", 0, "locking", "bad locking"},
    {HDR(1, 0, "on") "abc write\n1 response status=200\n", 0, "line 2", "no time"},
    {HDR(1, 0, "on") "5 lock_wait lock=x\n6 response status=200\n", 0, "line 2", "bad lock"},
    {HDR(1, 0, "on") "5 write offset=2 length=9 titulo=\"a\"\n6 response status=200\n", 0, "line 2",
     "a write without id"},
    {HDR(1, 0, "on") "5 write offset=2 length=9 id=1 titulo=\"a\n6 response status=200\n", 0,
     "line 2", "unterminated string"},
    {HDR(1, 0, "on") "5 response status=2x0\n6 response status=200\n", 0, "line 2", "bad number"},
    {HDR(1, 0, "on") "5 response status=200\n", 1, NULL, "one event"},
    {HDR(1, 0, "on") "5 response status=200\n6 respo", 1, NULL, "a torn last line is skipped"},
    {HDR(1, 0, "on") "5 future_event x=\"y\" z=abc\n", 1, NULL, "an unknown event is skipped"},
    {"# taskserver-trace x pid=1 worker=0 locking=on\n", 0, "no format version", "no version"},
    {"# taskserver-trace 1 pid=5 worker=0 stray locking=on\n", 1, NULL, "a header word alone"},
    {HDR(1, 0, "on") "5 response status\n6 response status=200\n", 0, "line 2",
     "a key without a value"},
    {HDR(1, 0, "on") "5 write offset=2 length=9 id=1 titulo=\"\\xZZ\"\n6 response status=200\n", 0,
     "line 2", "a bad escape"},
    {HDR(1, 0, "on") "5 write offset=2 length=9 id=1 titulo=\"a\"\n6 lock_wait lock=q\n", 0,
     "line 3", "a bad line after a write (its strings are dropped)"},
    {HDR(1, 0, "on") "5 write offset=2 length=9 id=1\n", 1, NULL, "a write without strings"},
};

START_TEST(test_reader)
{
    const struct reader_case *tc = &reader_cases[_i];
    struct trace_set set;
    char err[256] = "";
    trace_set_init(&set);
    int rc = trace_set_read_text(&set, "x.trace", tc->text, strlen(tc->text), err, sizeof(err));
    if (tc->ok) {
        ck_assert_msg(rc == 0, "%s: expected success, got \"%s\"", tc->desc, err);
    } else {
        ck_assert_msg(rc == -1, "%s: expected an error", tc->desc);
        ck_assert_msg(strstr(err, tc->err_has) != NULL && strstr(err, "x.trace") != NULL,
                      "%s: expected an error naming x.trace with \"%s\", got \"%s\"", tc->desc,
                      tc->err_has, err);
        ck_assert_uint_eq(set.num_workers, 0);
        ck_assert_uint_eq(set.num_events, 0);
    }
    trace_set_free(&set);
}
END_TEST

START_TEST(test_reader_fields)
{
    static const char text[] =
        HDR(77, 3, "off") "12 write offset=2 length=40 id=1 titulo=\"q\\\"b\\\\s\\x01\\x7fz\" "
                          "cliente=\"\xc3\xb1\" extra=9\n"
                          "13 future x=1\n"
                          "# stopped: event cap 2 reached\n"
                          "# end events=2\n"
                          "14 wri";
    struct trace_set set;
    char err[256];
    trace_set_init(&set);
    ck_assert_int_eq(trace_set_read_text(&set, "f.trace", text, strlen(text), err, sizeof(err)), 0);
    ck_assert_uint_eq(set.num_workers, 1);
    ck_assert_int_eq(set.workers[0].pid, 77);
    ck_assert_uint_eq(set.workers[0].index, 3);
    ck_assert_int_eq(set.workers[0].locking, 0);
    ck_assert_int_eq(set.workers[0].capped, 1);
    ck_assert_int_eq(set.workers[0].ended, 1);
    ck_assert_uint_eq(set.workers[0].num_torn_lines, 1);
    ck_assert_uint_eq(set.workers[0].num_unknown, 1);
    ck_assert_uint_eq(set.num_events, 1);
    ck_assert_str_eq(set.events[0].titulo, "q\"b\\s\x01\x7fz");
    ck_assert_str_eq(set.events[0].cliente, "\xc3\xb1");
    ck_assert_int_eq(set.events[0].length, 40);
    trace_set_free(&set);
}
END_TEST

/* Several files: workers ordered by slot, then pid; events by time, then worker, then line;
 * a set that mixes locked and unlocked builds says so. */
START_TEST(test_set_merge)
{
    static const char a[] = HDR(300, 1, "on") "10 response status=201\n10 response status=202\n";
    static const char b[] = HDR(200, 1, "on") "10 response status=203\n5 response status=204\n";
    static const char c[] = HDR(100, 0, "off") "10 response status=205\n";
    struct trace_set set;
    char err[256];
    trace_set_init(&set);
    ck_assert_int_eq(trace_set_read_text(&set, "a.trace", a, strlen(a), err, sizeof(err)), 0);
    ck_assert_int_eq(set.locking, 1);
    ck_assert_int_eq(trace_set_read_text(&set, "b.trace", b, strlen(b), err, sizeof(err)), 0);
    ck_assert_int_eq(set.locking, 1);
    ck_assert_int_eq(trace_set_read_text(&set, "c.trace", c, strlen(c), err, sizeof(err)), 0);
    ck_assert_int_eq(set.locking, -1);
    trace_set_merge(&set);
    ck_assert_uint_eq(set.num_workers, 3);
    ck_assert_int_eq(set.workers[0].pid, 100);
    ck_assert_int_eq(set.workers[1].pid, 200);
    ck_assert_int_eq(set.workers[2].pid, 300);
    static const int want[] = {204, 205, 203, 201, 202};
    ck_assert_uint_eq(set.num_events, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_msg(set.events[i].status == want[i], "event %zu: status %d, expected %d", i,
                      set.events[i].status, want[i]);
    ck_assert_str_eq(set.workers[set.events[0].worker].path, "b.trace");
    trace_set_free(&set);

    /* A file that cannot be read, a directory with a file that is not a trace. */
    trace_set_init(&set);
    ck_assert_int_eq(trace_set_read_file(&set, "/nonexistent/x.trace", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "open /nonexistent/x.trace: No such file or directory");
    ck_assert_int_eq(trace_set_read_dir(&set, "/nonexistent", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "open directory /nonexistent: No such file or directory");
    ck_assert_uint_eq(set.num_workers, 0);
    trace_set_free(&set);
}
END_TEST

static const struct {
    int64_t ns;
    const char *text;
} format_cases[] = {
    {0, "0 ns"},           {999, "999 ns"},        {1500, "1.50 us"},        {15000, "15.0 us"},
    {150000, "150 us"},    {1500000, "1.50 ms"},   {-2500, "-2.50 us"},      {15000000, "15.0 ms"},
    {150000000, "150 ms"}, {2500000000, "2.50 s"}, {-3000000000, "-3.00 s"},
};

START_TEST(test_format_ns)
{
    char buf[32];
    ck_assert_str_eq(trace_format_ns(format_cases[_i].ns, buf, sizeof(buf)), format_cases[_i].text);
}
END_TEST

/* The picture of 40 appends a second apart (an unlocked build, its trace capped): titles
 * escaped for XML (& < > " as entities, control bytes and broken UTF-8 as '?', whole UTF-8
 * kept, a long one cut with an ellipsis), every idle second cut out and marked, the capped
 * trace said; the HTML page says there are no locks to overlap. */
START_TEST(test_svg_escaping_and_breaks)
{
    static char text[64 * 1024];
    size_t len = (size_t)snprintf(text, sizeof(text), "%s", HDR(5, 0, "off"));
    long long t = 1000;
    for (int i = 0; i < 40; i++) {
        t += 1000000000LL;
        len += (size_t)snprintf(
            text + len, sizeof(text) - len,
            "%lld tail_read offset=%d id=%d\n"
            "%lld write offset=%d length=90 id=%d titulo=\"a&b<c>\\\"d\\\""
            "\\x01\\xff\\xf0\\x9f\\x98\\x80\\xe2\\x80!%s\" cliente=\"c\"\n"
            "%lld response status=201\n",
            t, 100 + i * 90, i, t + 100, 100 + i * 90, i + 1,
            i == 0 ? "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz" : "",
            t + 200);
    }
    len += (size_t)snprintf(text + len, sizeof(text) - len, "# stopped: event cap reached\n");
    struct trace_set set;
    struct trace_analysis an;
    char err[256];
    trace_set_init(&set);
    ck_assert_msg(trace_set_read_text(&set, "x.trace", text, len, err, sizeof(err)) == 0, "%s",
                  err);
    trace_set_merge(&set);
    ck_assert_int_eq(trace_analyze(&set, &an), 0);
    char *svg = NULL;
    size_t svg_len = 0;
    FILE *f = open_memstream(&svg, &svg_len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(timeline_svg_write(f, &set, &an), 0);
    fclose(f);
    size_t writes = 0, breaks = 0;
    for (const char *p = svg; (p = strstr(p, "<g class=\"write\"")) != NULL; p++)
        writes++;
    for (const char *p = svg; (p = strstr(p, "class=\"break\"")) != NULL; p++)
        breaks++;
    ck_assert_uint_eq(writes, 40);
    ck_assert_uint_eq(breaks, 39);
    ck_assert_ptr_nonnull(strstr(svg, "a&amp;b&lt;c&gt;&quot;d&quot;??\xf0\x9f\x98\x80?"
                                      "?!"));
    ck_assert_ptr_nonnull(strstr(svg, "\xe2\x80\xa6")); /* the long title, cut */
    ck_assert_ptr_null(strstr(svg, "<c>"));
    ck_assert_ptr_null(memchr(svg, '\x01', svg_len));
    ck_assert_ptr_null(memchr(svg, '\xff', svg_len));
    ck_assert_ptr_nonnull(strstr(svg, ">trace capped</text>"));
    free(svg);

    char *html = NULL;
    size_t html_len = 0;
    f = open_memstream(&html, &html_len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(timeline_html_write(f, &set, &an), 0);
    fclose(f);
    ck_assert_msg(strstr(html, "overlapping holds: none (no locks in this build); 0 overlapping "
                               "read-to-write sections.") != NULL,
                  "%.300s", html);
    free(html);
    trace_analysis_free(&an);
    trace_set_free(&set);
}
END_TEST

/* ---- the writer, read back ---- */

static char tmp_dir[256];

static void make_tmp(void)
{
    test_tmp_dir(tmp_dir, sizeof(tmp_dir), "trace");
}

static void remove_tmp(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_writer_round_trip)
{
    static struct task t; /* large: off the stack */
    char err[256], path[400];
    make_tmp();
    memset(&t, 0, sizeof(t));
    /* 70 bytes: 62 ASCII, then "ñ" x4 from byte 62: the cut at 64 falls inside "ñ" #2. */
    memset(t.titulo, 'x', 62);
    memcpy(t.titulo + 62, "\xc3\xb1\xc3\xb1\xc3\xb1\xc3\xb1", 8);
    t.titulo_len = 70;
    t.titulo[0] = '"';
    t.titulo[1] = '\n';
    strcpy(t.cliente, "ana");
    t.cliente_len = 3;
    t.has_cliente = 1;

    /* The store reports the record as stored: the writer reads titulo and cliente from it. */
    static char line[TASK_JSON_RECORD_MAX];
    struct task_meta meta = {1, 0, 1, NULL};
    long line_len = task_json_encode_record(&t, &meta, line, sizeof(line));
    ck_assert_int_gt(line_len, 0);
    struct trace *tr = trace_open(tmp_dir, 2, 1000, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    struct task_store_event evs[] = {
        {.kind = TASK_STORE_EV_LOCK_WAIT, .t_ns = 100, .lock_type = F_WRLCK},
        {.kind = TASK_STORE_EV_LOCK_GRANTED, .t_ns = 150, .lock_type = F_WRLCK, .duration_ns = 50},
        {.kind = TASK_STORE_EV_TAIL_READ, .t_ns = 160, .offset = 2, .id = 0},
        {.kind = TASK_STORE_EV_WRITE,
         .t_ns = 170,
         .offset = 2,
         .length = 99,
         .id = 1,
         .line = line,
         .line_len = (size_t)line_len},
        {.kind = TASK_STORE_EV_UNLOCK, .t_ns = 180, .lock_type = F_WRLCK, .duration_ns = 30},
        {.kind = TASK_STORE_EV_FSYNC, .t_ns = 181, .duration_ns = 1, .error = 5},
        {.kind = TASK_STORE_EV_OUTSIDE, .t_ns = 182, .what = "replaced"},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        trace_store_event(tr, &evs[i]);
    trace_response(tr, 201);
    trace_turn(tr, 0);
    trace_close(tr);

    snprintf(path, sizeof(path), "%s/worker-%ld.trace", tmp_dir, (long)getpid());
    struct trace_set set;
    trace_set_init(&set);
    ck_assert_msg(trace_set_read_dir(&set, tmp_dir, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(set.num_workers, 1);
    ck_assert_str_eq(set.workers[0].path, path);
    ck_assert_int_eq(set.workers[0].pid, getpid());
    ck_assert_uint_eq(set.workers[0].index, 2);
    ck_assert_int_eq(set.workers[0].ended, 1);
    ck_assert_int_eq(set.workers[0].capped, 0);
    ck_assert_uint_eq(set.num_events, 8);
    const struct trace_event *e = set.events;
    ck_assert_int_eq(e[0].kind, TRACE_LOCK_WAIT);
    ck_assert_int_eq(e[0].lock, 'w');
    ck_assert_int_eq(e[1].kind, TRACE_LOCK_GRANTED);
    ck_assert_int_eq(e[1].dur_ns, 50);
    ck_assert_int_eq(e[2].kind, TRACE_TAIL_READ);
    ck_assert_int_eq(e[3].kind, TRACE_WRITE);
    ck_assert_int_eq(e[3].t_ns, 170);
    ck_assert_int_eq(e[3].length, 99);
    ck_assert_uint_eq(e[3].id, 1);
    /* Cut at 64 bytes, back to the start of the character that did not fit whole. */
    char want[64];
    memcpy(want, t.titulo, 62);
    memcpy(want + 62, "\xc3\xb1", 2);
    ck_assert_uint_eq(strlen(e[3].titulo), 64);
    ck_assert(memcmp(e[3].titulo, want, 64) == 0);
    ck_assert_str_eq(e[3].cliente, "ana");
    ck_assert_int_eq(e[4].kind, TRACE_UNLOCK);
    ck_assert_int_eq(e[4].dur_ns, 30);
    ck_assert_int_eq(e[5].kind, TRACE_FSYNC);
    ck_assert_int_eq(e[5].error, 5);
    ck_assert_int_eq(e[6].kind, TRACE_OUTSIDE);
    ck_assert_str_eq(e[6].what, "replaced");
    ck_assert_int_eq(e[7].kind, TRACE_RESPONSE);
    ck_assert_int_eq(e[7].status, 201);
    trace_set_free(&set);
    remove_tmp();
}
END_TEST

START_TEST(test_writer_cap)
{
    char err[256];
    make_tmp();
    struct trace *tr = trace_open(tmp_dir, 0, 3, err, sizeof(err));
    ck_assert_msg(tr != NULL, "%s", err);
    for (int i = 0; i < 10; i++)
        trace_response(tr, 200 + i);
    trace_turn(tr, 1);
    trace_close(tr);
    struct trace_set set;
    trace_set_init(&set);
    ck_assert_msg(trace_set_read_dir(&set, tmp_dir, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(set.num_events, 3);
    ck_assert_int_eq(set.workers[0].capped, 1);
    ck_assert_int_eq(set.workers[0].ended, 1);
    ck_assert_int_eq(set.events[2].status, 202);
    trace_set_free(&set);
    remove_tmp();
}
END_TEST

START_TEST(test_writer_errors)
{
    char err[256];
    make_tmp();
    char file[400], missing[400];
    snprintf(file, sizeof(file), "%s/plain", tmp_dir);
    snprintf(missing, sizeof(missing), "%s/a/b", tmp_dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(trace_prepare_dir(file, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, file) != NULL, "%s", err);
    ck_assert_int_eq(trace_prepare_dir(missing, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, missing) != NULL, "%s", err);
    ck_assert_ptr_null(trace_open(missing, 0, 10, err, sizeof(err)));
    ck_assert_msg(strstr(err, missing) != NULL, "%s", err);
    snprintf(missing, sizeof(missing), "%s/new", tmp_dir);
    ck_assert_int_eq(trace_prepare_dir(missing, err, sizeof(err)), 0);
    struct trace_set set;
    trace_set_init(&set);
    ck_assert_int_eq(trace_set_read_dir(&set, missing, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "no *.trace files") != NULL, "%s", err);
    trace_set_free(&set);
    remove_tmp();
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");
    tcase_add_loop_test(tc, test_matcher, 0,
                        (int)(sizeof(matcher_cases) / sizeof(matcher_cases[0])));
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_failed_appends_answered);
    tcase_add_loop_test(tc, test_reader, 0, (int)(sizeof(reader_cases) / sizeof(reader_cases[0])));
    tcase_add_test(tc, test_reader_fields);
    tcase_add_test(tc, test_set_merge);
    tcase_add_test(tc, test_svg_escaping_and_breaks);
    tcase_add_loop_test(tc, test_format_ns, 0,
                        (int)(sizeof(format_cases) / sizeof(format_cases[0])));
    tcase_add_test(tc, test_writer_round_trip);
    tcase_add_test(tc, test_writer_cap);
    tcase_add_test(tc, test_writer_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    test_tmp_begin("test_trace");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
