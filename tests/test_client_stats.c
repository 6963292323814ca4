/* test_client_stats.c - clientemulator's outcome kinds and latency percentiles as tables. */
#include "client_stats.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- percentiles: nearest rank, the smallest value with at least p% of the values <= it ---- */

/* Up to 4 values are listed; more are (i * mult) % n + 1 for i = 0..n-1, a permutation of
 * 1..n when mult is coprime to n: unsorted input whose sorted order is known. */
struct value_set {
    const char *name;
    unsigned n;
    uint32_t values[4];
    unsigned mult;
};

enum { NONE, ONE, TWO, THREE, EQUAL, HUNDRED, THOUSAND };

static const struct value_set value_sets[] = {
    [NONE] = {"no values", 0, {0}, 0},
    [ONE] = {"1 value", 1, {5}, 0},
    [TWO] = {"2 values", 2, {20, 10}, 0},
    [THREE] = {"3 values, unsorted", 3, {30, 10, 20}, 0},
    [EQUAL] = {"4 equal values", 4, {7, 7, 7, 7}, 0},
    [HUNDRED] = {"1..100 shuffled", 100, {0}, 37},
    [THOUSAND] = {"1..1000 shuffled", 1000, {0}, 601},
};

static const struct percentile_case {
    int set;
    double p;
    uint64_t expected;
} percentile_cases[] = {
    {NONE, 50, 0},
    {NONE, 100, 0},
    {ONE, 0, 5},
    {ONE, 1, 5},
    {ONE, 50, 5},
    {ONE, 99, 5},
    {ONE, 100, 5},
    {TWO, 0, 10},
    {TWO, 1, 10},
    {TWO, 50, 10},
    {TWO, 50.5, 20},
    {TWO, 90, 20},
    {TWO, 99, 20},
    {TWO, 100, 20},
    {THREE, 33, 10},
    {THREE, 34, 20},
    {THREE, 66, 20},
    {THREE, 67, 30},
    {THREE, 100, 30},
    {EQUAL, 0, 7},
    {EQUAL, 50, 7},
    {EQUAL, 90, 7},
    {EQUAL, 99, 7},
    {EQUAL, 100, 7},
    {HUNDRED, 0, 1},
    {HUNDRED, 1, 1},
    {HUNDRED, 1.5, 2},
    {HUNDRED, 50, 50},
    {HUNDRED, 50.5, 51},
    {HUNDRED, 90, 90},
    {HUNDRED, 99, 99},
    {HUNDRED, 99.5, 100},
    {HUNDRED, 100, 100},
    {THOUSAND, 0.1, 1},
    {THOUSAND, 50, 500},
    {THOUSAND, 90, 900},
    {THOUSAND, 99, 990},
    {THOUSAND, 100, 1000},
    /* p / 100 first was one rank too far here: 0.07 * 100 is a hair above 7 in binary. */
    {HUNDRED, 7, 7},
    {THOUSAND, 99.9, 999},
};

static uint32_t set_value(const struct value_set *vs, unsigned i)
{
    return vs->n <= 4 ? vs->values[i] : (uint32_t)((i * vs->mult) % vs->n + 1);
}

static void check_percentile(const struct percentile_case *c)
{
    const struct value_set *vs = &value_sets[c->set];
    struct client_stats st;
    ck_assert_int_eq(client_stats_init(&st, vs->n), 0);
    for (unsigned i = 0; i < vs->n; i++)
        client_stats_add(&st, CURLE_OK, 201, set_value(vs, i), NULL);
    client_stats_finish(&st, 1000000);
    uint64_t got = client_stats_percentile(&st, c->p);
    ck_assert_msg(got == c->expected, "%s, p%g: expected %llu, got %llu", vs->name, c->p,
                  (unsigned long long)c->expected, (unsigned long long)got);
    client_stats_release(&st);
}

START_TEST(test_percentile)
{
    check_percentile(&percentile_cases[_i]);
}
END_TEST

/* Latencies are kept in 32 bits (saturated), and only for the requests planned. */
START_TEST(test_latency_bounds)
{
    struct client_stats st;
    ck_assert_int_eq(client_stats_init(&st, 2), 0);
    client_stats_add(&st, CURLE_OK, 201, 5000000000ull, NULL);
    client_stats_add(&st, CURLE_OK, 201, 3, NULL);
    client_stats_add(&st, CURLE_OK, 201, 1, NULL); /* one more than planned: counted only */
    client_stats_finish(&st, 1);
    ck_assert_uint_eq(st.num_sent, 3);
    ck_assert_uint_eq(client_stats_percentile(&st, 1), 3);
    ck_assert_uint_eq(client_stats_percentile(&st, 100), UINT32_MAX);
    client_stats_release(&st);
}
END_TEST

/* ---- outcome kinds ---- */

static const struct kind_case {
    int curl_code;
    long status;
    enum client_stats_kind expected;
    const char *description;
} kind_cases[] = {
    {CURLE_OK, 201, CLIENT_STATS_OK, "201 is the only success"},
    {CURLE_OK, 200, CLIENT_STATS_HTTP, "200 to a POST"},
    {CURLE_OK, 100, CLIENT_STATS_HTTP, "the lowest status"},
    {CURLE_OK, 503, CLIENT_STATS_HTTP, "503 lock timeout"},
    {CURLE_OK, 599, CLIENT_STATS_HTTP, "the highest status"},
    {CURLE_OK, 600, CLIENT_STATS_OTHER, "past the status range"},
    {CURLE_OK, 99, CLIENT_STATS_OTHER, "below the status range"},
    {CURLE_OK, 0, CLIENT_STATS_OTHER, "no status at all"},
    {CURLE_COULDNT_CONNECT, 0, CLIENT_STATS_REFUSED, "connect refused"},
    {CURLE_OPERATION_TIMEDOUT, 0, CLIENT_STATS_TIMEOUT, "timeout"},
    {CURLE_GOT_NOTHING, 0, CLIENT_STATS_RESET, "closed before the status line"},
    {CURLE_RECV_ERROR, 0, CLIENT_STATS_RESET, "reset while reading"},
    {CURLE_SEND_ERROR, 0, CLIENT_STATS_RESET, "reset while sending"},
    {CURLE_PARTIAL_FILE, 201, CLIENT_STATS_RESET, "closed inside the body of a 201"},
    {CURLE_ABORTED_BY_CALLBACK, 0, CLIENT_STATS_RESET, "a resend refused by the load loop"},
    {CURLE_COULDNT_RESOLVE_HOST, 0, CLIENT_STATS_OTHER, "name not resolved"},
    {CURLE_URL_MALFORMAT, 0, CLIENT_STATS_OTHER, "bad URL"},
};

START_TEST(test_kind)
{
    const struct kind_case *c = &kind_cases[_i];
    enum client_stats_kind got = client_stats_classify(c->curl_code, c->status);
    ck_assert_msg(got == c->expected, "%s (curl %d, http %ld): expected kind %d, got %d",
                  c->description, c->curl_code, c->status, (int)c->expected, (int)got);
}
END_TEST

/* Each finished request counted once, in its kind; the first failure kept in words. */
START_TEST(test_counts)
{
    struct client_stats st;
    ck_assert_int_eq(client_stats_init(&st, 8), 0);
    client_stats_add(&st, CURLE_OK, 201, 1, NULL);
    client_stats_add(&st, CURLE_OK, 503, 1, "");
    client_stats_add(&st, CURLE_OK, 503, 1, NULL);
    client_stats_add(&st, CURLE_COULDNT_CONNECT, 0, 1, "Failed to connect to 127.0.0.1");
    client_stats_add(&st, CURLE_RECV_ERROR, 0, 1, NULL);
    client_stats_add(&st, CURLE_OPERATION_TIMEDOUT, 0, 1, NULL);
    client_stats_add(&st, CURLE_URL_MALFORMAT, 0, 1, NULL);
    client_stats_add(&st, CURLE_OK, 201, 1, NULL);
    char got[512];
    snprintf(got, sizeof(got),
             "sent=%llu acked=%llu failed=%llu http201=%llu http503=%llu refused=%llu "
             "reset=%llu timeout=%llu other=%llu curl7=%llu curl56=%llu first=%s",
             (unsigned long long)st.num_sent, (unsigned long long)st.num_acked,
             (unsigned long long)client_stats_num_failed(&st), (unsigned long long)st.num_http[201],
             (unsigned long long)st.num_http[503], (unsigned long long)st.num_refused,
             (unsigned long long)st.num_reset, (unsigned long long)st.num_timeout,
             (unsigned long long)st.num_other,
             (unsigned long long)st.num_by_curlcode[CURLE_COULDNT_CONNECT],
             (unsigned long long)st.num_by_curlcode[CURLE_RECV_ERROR], st.first_error);
    const char *want = "sent=8 acked=2 failed=6 http201=2 http503=2 refused=1 reset=1 timeout=1 "
                       "other=1 curl7=1 curl56=1 first=HTTP status 503";
    ck_assert_msg(strcmp(got, want) == 0, "expected %s, got %s", want, got);
    client_stats_release(&st);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("client_stats");
    TCase *tc = tcase_create("tables");
    tcase_add_loop_test(tc, test_percentile, 0, N(percentile_cases));
    tcase_add_test(tc, test_latency_bounds);
    tcase_add_loop_test(tc, test_kind, 0, N(kind_cases));
    tcase_add_test(tc, test_counts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
