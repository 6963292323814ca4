/* test_board.c - the master's board: whether any worker can use tasks.json, and since when
 * (board_no_file_since), as tables of slots. Found by tools/mutate: master-board-since-earliest
 * survived every end-to-end test, which never have two workers lose the file apart in time. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "board.h"

#define SLOTS 3

static const struct {
    int64_t since[SLOTS]; /* 0: that worker can use the file */
    int expect;           /* board_no_file_since() */
    int64_t expect_since; /* when expect is 1 */
    const char *description;
} since_cases[] = {
    {{0, 0, 0}, 0, 0, "every worker can use it"},
    {{1000, 0, 5000}, 0, 0, "one still can"},
    {{1000, 1000, 1000}, 1, 1000, "all lost it at once"},
    {{1000, 5000, 3000}, 1, 5000, "the latest loss counts, not the earliest"},
    {{7000, 2000, 4000}, 1, 7000, "the latest first"},
};

START_TEST(test_no_file_since)
{
    struct board *b = board_create(SLOTS);
    ck_assert_ptr_nonnull(b);
    for (unsigned i = 0; i < SLOTS; i++)
        board_set_file(b, i, since_cases[_i].since[i] == 0, since_cases[_i].since[i]);
    int64_t since = -1;
    int r = board_no_file_since(b, &since);
    ck_assert_msg(r == since_cases[_i].expect, "case %d (%s): expected %d, got %d", _i,
                  since_cases[_i].description, since_cases[_i].expect, r);
    if (r == 1)
        ck_assert_msg(since == since_cases[_i].expect_since,
                      "case %d (%s): since %lld, expected %lld", _i, since_cases[_i].description,
                      (long long)since, (long long)since_cases[_i].expect_since);
    board_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("board");
    TCase *tc = tcase_create("board");
    tcase_add_loop_test(tc, test_no_file_since, 0, sizeof(since_cases) / sizeof(since_cases[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
