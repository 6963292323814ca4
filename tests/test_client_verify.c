/* test_client_verify.c - the streaming verifier of clientemulator as tables: each list fed
 * whole, split at every byte and byte by byte, must give the same counts.
 *
 *     test_client_verify              the tables
 */
#include "client_verify.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One record line as the store writes it (without the comma). */
#define R(id, cliente, seq)                                                                        \
    "{\"id\":" #id ",\"titulo\":\"t\",\"cliente\":\"" cliente "\",\"seq\":" #seq                   \
    ",\"creada\":\"2026-11-26T15:00:00Z\",\"pid\":42}"

struct verify_case {
    const char *description;
    const char *cliente;
    unsigned num_tasks;
    const char *acked; /* '1'/'0' per seq from 1; NULL: every seq acknowledged */
    unsigned min_id;
    const char *list;
    const char *expected; /* "key=value ..." pairs that must appear in the summary */
    const char *why;      /* a part of first_damage, or NULL */
};

static const struct verify_case verify_cases[] = {
    /* all present */
    {"every task stored once", "a", 3, NULL, 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 2) ",\n" R(3, "a", 3) "\n]\n",
     "records=3 mine=3 acked=3 stored=3 missing=0 doubled=0 dup_ids=0 out_of_order=0 damaged=0 "
     "open=1 close=1 in_run=3 blocks=1 switches=0 ok=1",
     NULL},
    {"the last line without a newline", "a", 1, NULL, 0, "[\n" R(1, "a", 1) "\n]",
     "records=1 stored=1 close=1 damaged=0 ok=1", NULL},
    {"CRLF line ends", "a", 2, NULL, 0, "[\r\n" R(1, "a", 1) ",\r\n" R(2, "a", 2) "\r\n]\r\n",
     "records=2 stored=2 damaged=0 ok=1", NULL},
    {"a compact array on one line", "a", 2, NULL, 0, "[" R(1, "a", 1) "," R(2, "a", 2) "]\n",
     "records=2 stored=2 damaged=0 ok=1", NULL},
    {"two records on one line, comma between", "a", 2, NULL, 0,
     "[\n" R(1, "a", 1) "," R(2, "a", 2) "\n]\n", "records=2 stored=2 damaged=0 ok=1", NULL},
    {"UTF-8 in a titulo, split inside a character", "a", 1, NULL, 0,
     "[\n{\"id\":1,\"titulo\":\"\xc3\xb1"
     "and\xc3\xba \xe2\x9c\x93\",\"cliente\":\"a\",\"seq\":1}"
     "\n]\n",
     "records=1 stored=1 damaged=0 ok=1", NULL},
    /* an empty list */
    {"an empty list, nothing sent", "a", 0, NULL, 0, "[\n]\n",
     "records=0 acked=0 missing=0 open=1 close=1 ok=1", NULL},
    {"an empty list, three sent", "a", 3, NULL, 0, "[\n]\n",
     "records=0 acked=3 stored=0 missing=3 missing_first=1,2,3 ok=0", NULL},
    {"nothing at all", "a", 1, NULL, 0, "", "records=0 missing=1 open=0 close=0 ok=0", NULL},
    /* missing */
    {"seq 2 missing", "a", 3, NULL, 0, "[\n" R(1, "a", 1) ",\n" R(2, "a", 3) "\n]\n",
     "records=2 stored=2 missing=1 missing_first=2 doubled=0 ok=0", NULL},
    {"only the first 20 missing are listed", "a", 25, NULL, 0, "[\n" R(1, "a", 25) "\n]\n",
     "missing=24 missing_first=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 ok=0", NULL},
    {"a failed request that is missing is no loss", "a", 2, "10", 0, "[\n" R(1, "a", 1) "\n]\n",
     "acked=1 stored=1 missing=0 unacked=0 ok=1", NULL},
    {"a failed request stored anyway", "a", 2, "10", 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 2) "\n]\n", "acked=1 stored=1 unacked=1 missing=0 ok=1",
     NULL},
    {"an acknowledged task missing among failed ones", "a", 3, "011", 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 3) "\n]\n",
     "acked=2 stored=1 missing=1 missing_first=2 unacked=1 ok=0", NULL},
    /* doubled */
    {"seq 2 stored twice", "a", 2, NULL, 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 2) ",\n" R(3, "a", 2) "\n]\n",
     "records=3 mine=3 stored=2 doubled=1 doubled_first=2 missing=0 dup_ids=0 ok=0", NULL},
    {"seq 1 stored three times counts once as doubled", "a", 1, NULL, 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 1) ",\n" R(3, "a", 1) "\n]\n",
     "mine=3 stored=1 doubled=1 doubled_first=1 ok=0", NULL},
    {"an earlier run's records are not doubles", "a", 2, NULL, 3,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 2) ",\n" R(3, "a", 1) ",\n" R(4, "a", 2) "\n]\n",
     "records=4 earlier=2 mine=2 stored=2 doubled=0 in_run=2 ok=1", NULL},
    {"min_id 0 counts every run as this one", "a", 2, NULL, 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "a", 2) ",\n" R(3, "a", 1) ",\n" R(4, "a", 2) "\n]\n",
     "earlier=0 mine=4 doubled=2 doubled_first=1,2 ok=0", NULL},
    /* ids */
    {"a duplicate id", "a", 2, NULL, 0, "[\n" R(1, "a", 1) ",\n" R(1, "a", 2) "\n]\n",
     "records=2 stored=2 dup_ids=1 dup_first=1 out_of_order=1 ok=0", NULL},
    {"ids out of order, none repeated", "a", 3, NULL, 0,
     "[\n" R(2, "a", 1) ",\n" R(1, "a", 2) ",\n" R(3, "a", 3) "\n]\n",
     "records=3 stored=3 dup_ids=0 out_of_order=1 ok=0", NULL},
    {"ids with gaps are in order", "a", 2, NULL, 0, "[\n" R(5, "a", 1) ",\n" R(90, "a", 2) "\n]\n",
     "out_of_order=0 dup_ids=0 ok=1", NULL},
    {"a record without an id is damage", "a", 1, NULL, 0,
     "[\n{\"titulo\":\"t\",\"cliente\":\"a\",\"seq\":1}\n]\n",
     "records=0 damaged=1 damaged_at=2 missing=1 ok=0", NULL},
    /* other clientes */
    {"two clients interleaved", "a", 3, NULL, 0,
     "[\n" R(1, "a", 1) ",\n" R(2, "b", 1) ",\n" R(3, "a", 2) ",\n" R(4, "b", 2) ",\n" R(5, "a",
                                                                                         3) "\n]\n",
     "records=5 mine=3 stored=3 in_run=5 blocks=3 switches=4 ok=1", NULL},
    {"two clients one after the other", "a", 2, NULL, 0,
     "[\n" R(1, "b", 1) ",\n" R(2, "b", 2) ",\n" R(3, "a", 1) ",\n" R(4, "a", 2) "\n]\n",
     "records=4 mine=2 in_run=4 blocks=1 switches=1 ok=1", NULL},
    {"only another client's tasks", "a", 2, NULL, 0, "[\n" R(1, "b", 1) ",\n" R(2, "b", 2) "\n]\n",
     "records=2 mine=0 missing=2 blocks=0 switches=0 ok=0", NULL},
    {"a cliente that extends ours is another", "a", 1, NULL, 0,
     "[\n" R(1, "ab", 1) ",\n" R(2, "a", 1) "\n]\n", "mine=1 stored=1 doubled=0 ok=1", NULL},
    {"a record without cliente is another's", "a", 1, NULL, 0,
     "[\n{\"id\":1,\"titulo\":\"t\",\"seq\":1},\n" R(2, "a", 1) "\n]\n",
     "records=2 mine=1 stored=1 ok=1", NULL},
    {"seq outside 1..num_tasks is not ours to count", "a", 1, NULL, 0,
     "[\n" R(1, "a", 0) ",\n" R(2, "a", 1) ",\n" R(3, "a", 9) "\n]\n",
     "records=3 mine=1 stored=1 doubled=0 ok=1", NULL},
    {"interleaving counts only this run", "a", 1, NULL, 2,
     "[\n" R(1, "b", 1) ",\n" R(2, "a", 1) ",\n" R(3, "b", 2) "\n]\n",
     "in_run=2 blocks=1 switches=1 earlier=0 ok=1", NULL},
    /* damaged lines */
    {"a record cut short", "a", 2, NULL, 0,
     "[\n" R(1, "a", 1) ",\n{\"id\":2,\"titulo\":\"t\",\"cli\n" R(3, "a", 2) "\n]\n",
     "records=2 stored=2 damaged=1 damaged_at=3 ok=0", NULL},
    {"two records glued without a comma", "a", 2, NULL, 0, "[\n" R(1, "a", 1) R(2, "a", 2) "\n]\n",
     "records=2 stored=2 damaged=1 damaged_at=2 ok=0", "no ',' between two records"},
    {"a missing comma between lines", "a", 2, NULL, 0, "[\n" R(1, "a", 1) "\n" R(2, "a", 2) "\n]\n",
     "records=2 damaged=1 damaged_at=3 ok=0", "no ',' between two records"},
    {"a comma without a record", "a", 1, NULL, 0, "[\n,\n" R(1, "a", 1) "\n]\n",
     "records=1 damaged=1 damaged_at=2 ok=0", "a ',' without a record before it"},
    {"a line that is not a record", "a", 1, NULL, 0, "[\nhello\n" R(1, "a", 1) "\n]\n",
     "records=1 stored=1 damaged=1 damaged_at=2 ok=0", "not a record"},
    {"bytes after the closing bracket", "a", 1, NULL, 0, "[\n" R(1, "a", 1) "\n]\nxyz\n",
     "records=1 close=1 damaged=1 damaged_at=4 ok=0", "bytes after the closing bracket"},
    {"bytes after the bracket on its line", "a", 1, NULL, 0, "[\n" R(1, "a", 1) "\n] x\n",
     "close=1 damaged=1 damaged_at=3 ok=0", "bytes after the closing bracket"},
    {"no opening bracket", "a", 1, NULL, 0, R(1, "a", 1) "\n]\n",
     "records=1 stored=1 damaged=1 damaged_at=1 open=1 ok=0", "does not start with '['"},
    {"a second opening bracket", "a", 1, NULL, 0, "[\n[\n" R(1, "a", 1) "\n]\n",
     "records=1 damaged=1 damaged_at=2 ok=0", "a second '['"},
    {"a comma before the closing bracket", "a", 1, NULL, 0, "[\n" R(1, "a", 1) ",\n]\n",
     "records=1 stored=1 close=1 damaged=1 damaged_at=3 ok=0", "a ',' before the closing bracket"},
    {"a list never closed", "a", 1, NULL, 0, "[\n" R(1, "a", 1) ",\n",
     "records=1 stored=1 damaged=0 close=0 ok=0", NULL},
    {"damage counted once per line, the first one named", "a", 1, NULL, 0,
     "[\nxx\n" R(1, "a", 1) "\nyy\n]\n", "damaged=2 damaged_at=2 ok=0", "not a record"},
    {"blank lines are not damage", "a", 1, NULL, 0, "\n[\n\n  " R(1, "a", 1) "  \n\t\n]\n\n",
     "records=1 damaged=0 ok=1", NULL},
};

/* The counts of a finished verifier, all of them, as "key=value" words. */
static void summary(const struct client_verify *v, char *out, size_t cap)
{
    const struct client_verify_result *r = client_verify_result(v);
    const struct {
        const char *key;
        const uint64_t *xs;
        uint64_t n;
    } lists[] = {{"missing_first", r->missing, r->num_missing},
                 {"doubled_first", r->doubled, r->num_doubled},
                 {"dup_first", r->dup_ids, r->num_dup_ids}};
    size_t len = (size_t)snprintf(
        out, cap,
        "records=%llu mine=%llu acked=%llu stored=%llu missing=%llu doubled=%llu unacked=%llu "
        "dup_ids=%llu out_of_order=%llu damaged=%llu damaged_at=%llu earlier=%llu in_run=%llu "
        "blocks=%llu switches=%llu open=%d close=%d ok=%d",
        (unsigned long long)r->num_records, (unsigned long long)r->num_mine,
        (unsigned long long)r->num_acked, (unsigned long long)r->num_stored,
        (unsigned long long)r->num_missing, (unsigned long long)r->num_doubled,
        (unsigned long long)r->num_unacked_stored, (unsigned long long)r->num_dup_ids,
        (unsigned long long)r->num_out_of_order, (unsigned long long)r->num_damaged_lines,
        (unsigned long long)r->first_damaged_line, (unsigned long long)r->num_earlier,
        (unsigned long long)r->num_in_run, (unsigned long long)r->num_blocks,
        (unsigned long long)r->num_switches, r->saw_open, r->saw_close, client_verify_ok(v));
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]) && len < cap; k++) {
        uint64_t n = lists[k].n < CLIENT_VERIFY_FIRST ? lists[k].n : CLIENT_VERIFY_FIRST;
        len += (size_t)snprintf(out + len, cap - len, " %s=", lists[k].key);
        for (uint64_t i = 0; i < n && len < cap; i++)
            len += (size_t)snprintf(out + len, cap - len, "%s%llu", i ? "," : "",
                                    (unsigned long long)lists[k].xs[i]);
    }
    if (len < cap)
        snprintf(out + len, cap - len, " why=%s", r->first_damage);
}

/* 1 when the word "key=value" of want is in got with the same value. */
static int summary_has(const char *got, const char *word, size_t word_len)
{
    ck_assert_msg(memchr(word, '=', word_len) != NULL, "bad expected word \"%.*s\"", (int)word_len,
                  word);
    for (const char *p = got; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n == word_len && memcmp(p, word, n) == 0)
            return 1;
        for (p += n; *p == ' '; p++)
            ;
    }
    return 0;
}

static unsigned char *acked_bitmap(const char *acked, unsigned num_tasks)
{
    unsigned char *map = calloc(num_tasks / 8 + 1, 1);
    ck_assert_ptr_nonnull(map);
    for (unsigned i = 0; acked != NULL && i < num_tasks && acked[i] != '\0'; i++)
        if (acked[i] == '1')
            map[i / 8] |= (unsigned char)(1u << (i % 8));
    return map;
}

/* Feeds list in pieces of step bytes, except that a first piece of first bytes
 * comes alone (0: none); writes the summary into out. */
static void run_feed(const struct verify_case *c, const char *list, size_t len, size_t first,
                     size_t step, char *out, size_t cap)
{
    unsigned char *map = c->acked ? acked_bitmap(c->acked, c->num_tasks) : NULL;
    struct client_verify *v = client_verify_new(c->cliente, c->num_tasks, map, c->min_id);
    ck_assert_ptr_nonnull(v);
    size_t off = 0;
    if (first > 0) {
        ck_assert_int_eq(client_verify_feed(v, list, first), (long)first);
        off = first;
    }
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        ck_assert_int_eq(client_verify_feed(v, list + off, n), (long)n);
        off += n;
    }
    client_verify_finish(v);
    summary(v, out, cap);
    client_verify_free(v);
    free(map);
}

static char whole[4096], piece[4096];

START_TEST(test_verify_table)
{
    const struct verify_case *c = &verify_cases[_i];
    size_t len = strlen(c->list);

    run_feed(c, c->list, len, 0, len ? len : 1, whole, sizeof(whole));
    for (const char *w = c->expected; *w != '\0';) {
        size_t n = strcspn(w, " ");
        ck_assert_msg(summary_has(whole, w, n), "%s: expected %.*s, got %s", c->description, (int)n,
                      w, whole);
        w += n + (w[n] == ' ');
    }
    if (c->why != NULL)
        ck_assert_msg(strstr(whole, c->why) != NULL, "%s: expected damage \"%s\", got %s",
                      c->description, c->why, whole);
    /* Any split must give the same counts and the same first damage. */
    for (size_t k = 1; k < len; k++) {
        run_feed(c, c->list, len, k, len, piece, sizeof(piece));
        ck_assert_msg(strcmp(piece, whole) == 0, "%s: split at byte %zu: expected %s, got %s",
                      c->description, k, whole, piece);
    }
    run_feed(c, c->list, len, 0, 1, piece, sizeof(piece));
    ck_assert_msg(strcmp(piece, whole) == 0, "%s: byte by byte: expected %s, got %s",
                  c->description, whole, piece);
}
END_TEST

/* finish() is idempotent and feeding nothing changes nothing. */
START_TEST(test_empty_feeds_and_double_finish)
{
    struct client_verify *v = client_verify_new("a", 1, NULL, 0);
    const char *list = "[\n" R(1, "a", 1) "\n]\n";
    ck_assert_ptr_nonnull(v);
    for (const char *p = list; *p != '\0'; p++) {
        ck_assert_int_eq(client_verify_feed(v, p, 0), 0);
        ck_assert_int_eq(client_verify_feed(v, p, 1), 1);
    }
    client_verify_finish(v);
    client_verify_finish(v);
    summary(v, whole, sizeof(whole));
    ck_assert_msg(strstr(whole, "records=1 mine=1 acked=1 stored=1 missing=0") != NULL &&
                      client_verify_ok(v),
                  "expected one stored task, got %s", whole);
    client_verify_free(v);
}
END_TEST

/* The verdicts in words and in JSON say what the counts say. */
START_TEST(test_printed_verdicts)
{
    static const struct {
        const char *list, *text, *json;
    } cases[] = {
        {"[\n" R(1, "a", 1) ",\n" R(2, "a", 2) "\n]\n",
         "verdict: OK, every acknowledged task is stored exactly once (note)\n",
         "{\"ok\":true,\"records\":2,\"mine\":2,\"acknowledged\":2,\"stored\":2,"},
        {"[\n" R(1, "a", 1) ",\n" R(2, "a", 1) "\n]\n",
         "  missing seq (first 20): 2\n  doubled seq (first 20): 1\n"
         "verdict: FAILED, 1 lost, 1 doubled, 0 duplicate ids, 0 damaged lines (note)\n",
         "\"missing_first\":[2],\"doubled_first\":[1],\"duplicate_ids_first\":[]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client_verify *v = client_verify_new("a", 2, NULL, 0);
        char *text = NULL, *json = NULL;
        size_t text_len = 0, json_len = 0;
        FILE *t = open_memstream(&text, &text_len), *j = open_memstream(&json, &json_len);
        ck_assert(v != NULL && t != NULL && j != NULL);
        client_verify_feed(v, cases[i].list, strlen(cases[i].list));
        client_verify_finish(v);
        client_verify_print_text(v, t, "http://x/tareas", "note");
        client_verify_print_json(v, j);
        fclose(t);
        fclose(j);
        ck_assert_msg(strstr(text, cases[i].text) != NULL, "case %zu: expected text %s, got %s", i,
                      cases[i].text, text);
        ck_assert_msg(strstr(json, cases[i].json) != NULL, "case %zu: expected JSON %s, got %s", i,
                      cases[i].json, json);
        free(text);
        free(json);
        client_verify_free(v);
    }
}
END_TEST

/* A line longer than the verifier's line limit (2 * TASK_JSON_RECORD_MAX): a compact array
 * of many records on one line, as another program may write it. The header promises any
 * split: fed whole or in pieces, it is the same "line too long" (once the line was read in
 * place when it arrived whole, and its records counted). */
START_TEST(test_long_line_any_split)
{
    static const struct verify_case c = {
        "a one-line array over the line limit", "a", 1000, NULL, 0, NULL, NULL, NULL};
    size_t cap = 1000 * 300 + 16, len = 0;
    char *list = malloc(cap);
    ck_assert_ptr_nonnull(list);
    list[len++] = '[';
    for (unsigned i = 1; i <= 1000; i++)
        len += (size_t)snprintf(list + len, cap - len,
                                "%s{\"id\":%u,\"titulo\":\"t\",\"cliente\":\"a\",\"seq\":%u,"
                                "\"creada\":\"2026-11-26T15:00:00Z\",\"pid\":42,"
                                "\"descripcion\":\"%0100d\"}",
                                i > 1 ? "," : "", i, i, 0);
    len += (size_t)snprintf(list + len, cap - len, "]\n");
    ck_assert_uint_gt(len, 2 * 65536);
    run_feed(&c, list, len, 0, len, whole, sizeof(whole));
    run_feed(&c, list, len, len / 2, len, piece, sizeof(piece));
    free(list);
    ck_assert_msg(strcmp(piece, whole) == 0, "%s: fed whole: %s; split in two: %s", c.description,
                  whole, piece);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("client_verify");
    TCase *tc = tcase_create("tables");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_verify_table, 0, N(verify_cases));
    tcase_add_test(tc, test_empty_feeds_and_double_finish);
    tcase_add_test(tc, test_printed_verdicts);
    tcase_add_test(tc, test_long_line_any_split);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
