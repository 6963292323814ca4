/* test_driver.c - the test drivers' shared helpers as tables: the escapes a test writes,
 * the status and header fields read from a head. A wrong answer here would make the drivers
 * send other bytes than the test meant, or misjudge what came back. */
#include "driver.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *input;
    const char *expected;
    size_t expected_len;
    const char *description;
} unescape_cases[] = {
    {"plain", "plain", 5, "nothing to decode"},
    {"", "", 0, "empty"},
    {"a\\r\\nb", "a\r\nb", 4, "CR LF"},
    {"\\t\\\\", "\t\\", 2, "tab and backslash"},
    {"x\\0y", "x\0y", 3, "a NUL inside"},
    {"\\x41\\x7a\\xFF", "Az\xff", 3, "hex, both cases"},
    {"\\x4", "\\x4", 3, "hex cut short: kept"},
    {"\\xg1", "\\xg1", 4, "not a hex digit: kept"},
    {"\\q", "\\q", 2, "an unknown escape: kept"},
    {"end\\", "end\\", 4, "a backslash at the end: kept"},
};

START_TEST(test_unescape)
{
    size_t len;
    char *got = driver_unescape(unescape_cases[_i].input, &len);
    ck_assert_msg(len == unescape_cases[_i].expected_len &&
                      memcmp(got, unescape_cases[_i].expected, len) == 0 && got[len] == '\0',
                  "%s: \"%s\": expected %zu bytes \"%s\", got %zu bytes \"%s\"",
                  unescape_cases[_i].description, unescape_cases[_i].input,
                  unescape_cases[_i].expected_len, unescape_cases[_i].expected, len, got);
    free(got);
}
END_TEST

#define HEAD                                                                                       \
    "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nconnection:close \r\nX-Empty:\r\n"              \
    "X-Tab:\tv\t\r\n\r\nX-After: 1\r\n"

static const struct {
    const char *head;
    const char *name;
    const char *expected; /* NULL: absent */
    const char *description;
} header_cases[] = {
    {HEAD, "Content-Length", "12", "exact name"},
    {HEAD, "content-length", "12", "any case"},
    {HEAD, "Connection", "close", "no blank before, trailing blank trimmed"},
    {HEAD, "X-Empty", "", "an empty value"},
    {HEAD, "X-Tab", "v", "tabs trimmed"},
    {HEAD, "Content", NULL, "a prefix of a name is not the name"},
    {HEAD, "Date", NULL, "absent"},
    {HEAD, "X-After", NULL, "after the blank line: the body"},
    {"HTTP/1.1 200 OK\r\nA: 1", "A", "1", "a head cut before its CRLF"},
    {"Content-Length: 5\r\n\r\n", "Content-Length", NULL, "the first line is never a field"},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", "Content-Length", "3",
     "a request head"},
};

START_TEST(test_header)
{
    size_t len = 0;
    const char *head = header_cases[_i].head, *want = header_cases[_i].expected;
    const char *got = driver_http_header(head, strlen(head), header_cases[_i].name, &len);
    ck_assert_msg(want == NULL ? got == NULL
                               : got != NULL && len == strlen(want) && memcmp(got, want, len) == 0,
                  "%s: expected %s, got %.*s", header_cases[_i].description, want ? want : "(none)",
                  got ? (int)len : 6, got ? got : "(none)");
}
END_TEST

static const struct {
    const char *head;
    int expected;
} status_cases[] = {
    {"HTTP/1.1 201 Created\r\n", 201},
    {"HTTP/1.0 404 x", 404},
    {"HTTP/1.1 200", 200},
    {"HTTP/1.1 20", -1},
    {"HTTP/1.1 2x0 OK", -1},
    {"HTTP/2 200 OK", -1},
    {"http/1.1 200 OK", -1},
    {"", -1},
};

START_TEST(test_status)
{
    const char *head = status_cases[_i].head;
    int got = driver_http_status(head, strlen(head));
    ck_assert_msg(got == status_cases[_i].expected, "\"%s\": expected %d, got %d", head,
                  status_cases[_i].expected, got);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("driver");
    TCase *tc = tcase_create("tables");
    tcase_add_loop_test(tc, test_unescape, 0, N(unescape_cases));
    tcase_add_loop_test(tc, test_header, 0, N(header_cases));
    tcase_add_loop_test(tc, test_status, 0, N(status_cases));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
