/* test_client_verify.c - clientemulator's verifier (src/client_verify.c) on hand-made lists:
 * every kind of damage it names, fed whole and one byte at a time; lines too long; a last
 * line without a newline; tasks stored although their request failed; the printed verdict. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_verify.h"

#define R(id, seq) "{\"id\":" #id ",\"titulo\":\"t\",\"cliente\":\"c\",\"seq\":" #seq "}"

static const struct {
    const char *list;
    int ok;
    const char *damage; /* the first damage, or NULL */
    unsigned damaged_lines;
    int saw_open, saw_close;
    const char *desc;
} cases[] = {
    {"[\n" R(1, 1) ",\n" R(2, 2) "\n]\n", 1, NULL, 0, 1, 1, "a whole list"},
    {"[\n" R(1, 1) ",\n" R(2, 2) "\n]", 1, NULL, 0, 1, 1, "no newline after ']'"},
    {"[" R(1, 1) "," R(2, 2) "]\n", 1, NULL, 0, 1, 1, "all on one line"},
    {"[\n" R(1, 1) ",\n" R(2, 2) ",\n]\n", 0, "a ',' before the closing bracket", 1, 1, 1,
     "a comma before ']'"},
    {"[\n" R(1, 1) ",\n" R(2, 2) "\n]\nxx\n", 0, "bytes after the closing bracket", 1, 1, 1,
     "a line after ']'"},
    {"[\n" R(1, 1) ",\n" R(2, 2) "\n] x\n", 0, "bytes after the closing bracket", 1, 1, 1,
     "bytes after ']' on its line"},
    {"[\n[\n" R(1, 1) ",\n" R(2, 2) "\n]\n", 0, "a second '['", 1, 1, 1, "two '['"},
    {R(1, 1) ",\n" R(2, 2) "\n]\n", 0, "the list does not start with '['", 1, 1, 1, "no '['"},
    {"[\n," R(1, 1) ",\n" R(2, 2) "\n]\n", 0, "a ',' without a record before it", 1, 1, 1,
     "a comma first"},
    {"[\nxyz\n" R(1, 1) ",\n" R(2, 2) "\n]\n", 0, "not a record", 1, 1, 1, "a line of junk"},
    {"[\n" R(1, 1) R(2, 2) "\n]\n", 0, "no ',' between two records", 1, 1, 1,
     "two records without a comma"},
    {"[\n" R(1, 1) ",\n" R(2, 2) "\n", 0, NULL, 0, 1, 0, "no ']'"},
    {"[\n" R(1, 1) ",\n{\"id\":2,\"titulo\":\"t\",\"cli\n]\n", 0, "record: invalid JSON", 1, 1, 1,
     "a record cut short"},
};

static void feed(struct client_verify *v, const char *s, size_t len, int bytewise)
{
    if (!bytewise) {
        ck_assert_int_eq(client_verify_feed(v, s, len), (long)len);
        return;
    }
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(client_verify_feed(v, s + i, 1), 1);
}

/* Each case twice: fed whole (_i even) and one byte at a time (_i odd). */
START_TEST(test_lists)
{
    size_t k = (size_t)_i / 2;
    int bytewise = _i % 2;
    struct client_verify *v = client_verify_new("c", 2, NULL, 0);
    ck_assert_ptr_nonnull(v);
    feed(v, cases[k].list, strlen(cases[k].list), bytewise);
    client_verify_finish(v);
    const struct client_verify_result *r = client_verify_result(v);
    ck_assert_msg(client_verify_ok(v) == cases[k].ok, "%s (%s): ok %d", cases[k].desc,
                  bytewise ? "byte by byte" : "whole", client_verify_ok(v));
    ck_assert_msg(r->num_damaged_lines == cases[k].damaged_lines, "%s: %llu damaged lines",
                  cases[k].desc, (unsigned long long)r->num_damaged_lines);
    if (cases[k].damage != NULL)
        ck_assert_msg(strncmp(r->first_damage, cases[k].damage, strlen(cases[k].damage)) == 0,
                      "%s: first damage \"%s\"", cases[k].desc, r->first_damage);
    ck_assert_int_eq(r->saw_open, cases[k].saw_open);
    ck_assert_int_eq(r->saw_close, cases[k].saw_close);
    if (cases[k].damage == NULL || strstr(cases[k].damage, "cut") == NULL)
        ck_assert_uint_ge(r->num_stored, cases[k].ok ? 2 : 1);
    client_verify_free(v);
}
END_TEST

/* A line longer than the verifier holds: damaged, and the reading goes on after it; one at
 * the very end (no newline) too. */
START_TEST(test_line_too_long)
{
    size_t big = 300 * 1024;
    char *junk = malloc(big);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 'x', big);
    for (int at_end = 0; at_end < 2; at_end++) {
        struct client_verify *v = client_verify_new("c", 2, NULL, 0);
        const char *head = "[\n" R(1, 1) ",\n" R(2, 2) "\n";
        feed(v, head, strlen(head), 0);
        for (size_t off = 0; off < big; off += 4096)
            feed(v, junk + off, 4096, 0);
        if (!at_end)
            feed(v, "\n]\n", 3, 0);
        client_verify_finish(v);
        const struct client_verify_result *r = client_verify_result(v);
        ck_assert_uint_eq(r->num_damaged_lines, 1);
        ck_assert_str_eq(r->first_damage, "line too long (byte 131072 of the line)");
        ck_assert_uint_eq(r->first_damaged_line, 4);
        ck_assert_uint_eq(r->num_stored, 2);
        ck_assert_int_eq(r->saw_close, !at_end);
        client_verify_free(v);
    }
    free(junk);
}
END_TEST

/* The printed verdict: tasks stored although their request failed, more missing ones than
 * it lists, a list without its ']'. */
START_TEST(test_print)
{
    unsigned char acked[8] = {0xff, 0xff, 0xff, 0xfd}; /* seq 26 failed; 1..25, 27..32 acked */
    struct client_verify *v = client_verify_new("c", 32, acked, 0);
    const char *list = "[\n" R(1, 1) ",\n" R(2, 26) ",\n";
    feed(v, list, strlen(list), 0);
    client_verify_finish(v);
    const struct client_verify_result *r = client_verify_result(v);
    ck_assert_uint_eq(r->num_unacked_stored, 1);
    ck_assert_uint_eq(r->num_missing, 30);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    client_verify_print_text(v, out, "http://x/tareas", NULL);
    fclose(out);
    ck_assert_msg(strstr(text, "  missing seq (first 20): 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
                               "18 19 20 21 ...\n") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "  stored although the request failed: 1\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "  the list is not a closed JSON array (no ']')\n") != NULL, "%s",
                  text);
    ck_assert_msg(strstr(text, "verdict: FAILED, 30 lost") != NULL, "%s", text);
    free(text);
    client_verify_free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_verify");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_lists, 0, 2 * (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_line_too_long);
    tcase_add_test(tc, test_print);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
