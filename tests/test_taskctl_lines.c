/* test_taskctl_lines.c - taskctl's fixed-buffer line reader as a table: files made of parts,
 * each line checked against the file it came from, the sequence against the expected one. */
#include "taskctl_lines.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX TASKCTL_LINES_MAX

/* A file is up to four parts, each text (len bytes, NULs allowed) repeated times times. */
struct part {
    const char *text;
    size_t len;
    size_t times;
};

#define P(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1, 1                                                                    \
    }
#define RUN(ch, n)                                                                                 \
    {                                                                                              \
        ch, 1, n                                                                                   \
    }
#define REP(lit, n)                                                                                \
    {                                                                                              \
        lit, sizeof(lit) - 1, n                                                                    \
    }

/* expected: one word per line, the text ('abc', with \r \xHH escapes, or c*N for a run of one
 * byte, N written as MAX-k when near the limit), then /nl when a newline ended it, /cut when
 * it was too long; "W x N" for N equal words in a row; "$" at the end of the file. */
static const struct lines_case {
    const char *description;
    struct part parts[4];
    long long end; /* -1: to the end of the file */
    const char *expected;
} lines_cases[] = {
    {"an empty file", {P("")}, -1, "$"},
    {"one line", {P("abc\n")}, -1, "'abc'/nl $"},
    {"the last line without a newline", {P("abc\ndef")}, -1, "'abc'/nl 'def' $"},
    {"only newlines", {P("\n\n\n")}, -1, "''/nl x 3 $"},
    {"CRLF: the CR stays in the text", {P("a\r\nb\r\n")}, -1, "'a\\r'/nl 'b\\r'/nl $"},
    {"a lone CR at the end", {P("\r")}, -1, "'\\r' $"},
    {"a NUL inside a line", {P("a\0b\n")}, -1, "'a\\x00b'/nl $"},
    /* at the limit */
    {"a line one byte under the limit",
     {RUN("x", MAX - 1), P("\nnext\n")},
     -1,
     "x*MAX-1/nl 'next'/nl $"},
    {"a line of exactly the limit", {RUN("x", MAX), P("\nnext\n")}, -1, "x*MAX/nl 'next'/nl $"},
    {"a last line of exactly the limit", {RUN("x", MAX)}, -1, "x*MAX $"},
    {"a line one byte over the limit",
     {RUN("x", MAX + 1), P("\nnext\n")},
     -1,
     "x*MAX/cut 'next'/nl $"},
    {"a last line one byte over the limit", {RUN("x", MAX + 1)}, -1, "x*MAX/cut $"},
    {"a very long line", {RUN("x", 5 * MAX + 3), P("\nnext\n")}, -1, "x*MAX/cut 'next'/nl $"},
    {"a very long last line", {RUN("x", 3 * MAX)}, -1, "x*MAX/cut $"},
    {"two long lines in a row",
     {RUN("y", MAX + 10), P("\n"), RUN("z", MAX), P("\n")},
     -1,
     "y*MAX/cut z*MAX/nl $"},
    /* at the buffer's edge */
    {"a newline in the buffer's last byte",
     {P("a\n"), RUN("x", MAX - 2), P("\nb\n")},
     -1,
     "'a'/nl x*MAX-2/nl 'b'/nl $"},
    {"a newline just past the buffer",
     {P("a\n"), RUN("x", MAX - 1), P("\nb\n")},
     -1,
     "'a'/nl x*MAX-1/nl 'b'/nl $"},
    {"a line of the limit straddling two reads",
     {P("a\n"), RUN("x", MAX), P("\nb\n")},
     -1,
     "'a'/nl x*MAX/nl 'b'/nl $"},
    {"many short lines over several reads",
     {REP("0123456789abcdef\n", 10000)},
     -1,
     "'0123456789abcdef'/nl x 10000 $"},
    {"short lines and a cut one",
     {REP("ab\n", 3), RUN("x", MAX + 5), P("\n"), REP("cd\n", 2)},
     -1,
     "'ab'/nl x 3 x*MAX/cut 'cd'/nl x 2 $"},
    /* an end before the end of the file */
    {"end inside a line", {P("abc\ndef\n")}, 6, "'abc'/nl 'de' $"},
    {"end just past a newline", {P("abc\ndef\n")}, 4, "'abc'/nl $"},
    {"end 0", {P("abc\n")}, 0, "$"},
    {"end past the end of the file", {P("abc\ndef\n")}, 100, "'abc'/nl 'def'/nl $"},
    {"end at the limit inside a long line", {RUN("x", MAX + 100)}, MAX, "x*MAX $"},
    {"end one past the limit inside a long line", {RUN("x", MAX + 100)}, MAX + 1, "x*MAX/cut $"},
};

static char *file_bytes(const struct lines_case *c, size_t *len)
{
    size_t n = 0;
    for (int k = 0; k < 4 && c->parts[k].text != NULL; k++)
        n += c->parts[k].len * c->parts[k].times;
    char *buf = malloc(n + 1);
    ck_assert_ptr_nonnull(buf);
    *len = 0;
    for (int k = 0; k < 4 && c->parts[k].text != NULL; k++)
        for (size_t t = 0; t < c->parts[k].times; t++) {
            memcpy(buf + *len, c->parts[k].text, c->parts[k].len);
            *len += c->parts[k].len;
        }
    return buf;
}

/* One line as a word of the expected notation. */
static void line_word(const struct taskctl_line *l, char *out, size_t cap)
{
    size_t o = 0, same = 1;
    for (size_t i = 1; i < l->len; i++)
        same &= l->text[i] == l->text[0];
    if (l->len > 4 && same) {
        if (l->len == MAX)
            o = (size_t)snprintf(out, cap, "%c*MAX", l->text[0]);
        else if (l->len < MAX && l->len + 8 >= MAX)
            o = (size_t)snprintf(out, cap, "%c*MAX-%zu", l->text[0], (size_t)MAX - l->len);
        else
            o = (size_t)snprintf(out, cap, "%c*%zu", l->text[0], l->len);
    } else {
        out[o++] = '\'';
        for (size_t i = 0; i < l->len && o + 8 < cap; i++) {
            unsigned char ch = (unsigned char)l->text[i];
            if (ch == '\r')
                o += (size_t)snprintf(out + o, cap - o, "\\r");
            else if (ch < 0x20 || ch >= 0x7f)
                o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
            else
                out[o++] = (char)ch;
        }
        out[o++] = '\'';
        out[o] = '\0';
    }
    snprintf(out + o, cap - o, "%s%s", l->has_newline ? "/nl" : "", l->too_long ? "/cut" : "");
}

/* Where the line after l starts: past its newline, or past the next one after a cut. */
static off_t next_offset(const struct taskctl_line *l, const char *file, size_t file_len)
{
    size_t p = (size_t)l->offset + l->len;
    if (l->too_long)
        while (p < file_len && file[p] != '\n')
            p++;
    return (off_t)(p < file_len ? p + 1 : p);
}

/* Appends word to got, or counts it when it repeats the previous one. */
static void add_word(char *got, size_t cap, char *prev, size_t *repeats, const char *word)
{
    if (prev[0] != '\0' && strcmp(prev, word) == 0) {
        (*repeats)++;
        return;
    }
    size_t len = strlen(got);
    if (*repeats > 1)
        len += (size_t)snprintf(got + len, cap - len, " x %zu", *repeats);
    if (word[0] != '\0')
        snprintf(got + len, cap - len, "%s%s", len ? " " : "", word);
    snprintf(prev, 64, "%s", word);
    *repeats = 1;
}

START_TEST(test_lines_table)
{
    const struct lines_case *c = &lines_cases[_i];
    size_t file_len;
    char *file = file_bytes(c, &file_len);
    size_t limit = c->end >= 0 && (size_t)c->end < file_len ? (size_t)c->end : file_len;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(file, 1, file_len, f), file_len);
    ck_assert_int_eq(fflush(f), 0);

    struct taskctl_lines r;
    struct taskctl_line l;
    char got[512] = "", prev[64] = "", word[64];
    size_t repeats = 0;
    off_t want_offset = 0;
    int rc;
    ck_assert_int_eq(taskctl_lines_init(&r, fileno(f), (off_t)c->end), 0);
    for (uint64_t number = 1; (rc = taskctl_lines_next(&r, &l)) > 0; number++) {
        ck_assert_msg(l.number == number, "%s: line number expected %llu, got %llu", c->description,
                      (unsigned long long)number, (unsigned long long)l.number);
        ck_assert_msg(l.offset == want_offset, "%s: line %llu: offset expected %lld, got %lld",
                      c->description, (unsigned long long)number, (long long)want_offset,
                      (long long)l.offset);
        ck_assert_msg((size_t)l.offset + l.len <= limit &&
                          memcmp(l.text, file + l.offset, l.len) == 0 &&
                          memchr(l.text, '\n', l.len) == NULL,
                      "%s: line %llu is not the file's bytes at %lld", c->description,
                      (unsigned long long)number, (long long)l.offset);
        ck_assert(!l.has_newline || file[l.offset + (off_t)l.len] == '\n');
        want_offset = next_offset(&l, file, limit);
        line_word(&l, word, sizeof(word));
        add_word(got, sizeof(got), prev, &repeats, word);
    }
    add_word(got, sizeof(got), prev, &repeats, "");
    snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", got[0] ? " " : "",
             rc == 0 ? "$" : strerror(errno));
    ck_assert_msg(strcmp(got, c->expected) == 0, "%s: expected %s, got %s", c->description,
                  c->expected, got);
    ck_assert_int_eq(taskctl_lines_next(&r, &l), 0); /* the end stays the end */
    taskctl_lines_release(&r);
    fclose(f);
    free(file);
}
END_TEST

/* A descriptor pread() refuses: -1 with its errno, not the end of the file. */
START_TEST(test_read_error)
{
    struct taskctl_lines r;
    struct taskctl_line l;
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(taskctl_lines_init(&r, fd, -1), 0);
    errno = 0;
    ck_assert_int_eq(taskctl_lines_next(&r, &l), -1);
    ck_assert_msg(errno == EISDIR, "expected EISDIR, got %s", strerror(errno));
    taskctl_lines_release(&r);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("taskctl_lines");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_lines_table, 0,
                        (int)(sizeof(lines_cases) / sizeof(lines_cases[0])));
    tcase_add_test(tc, test_read_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
