/* taskctl_table.h - the readable table of `taskctl list` and safe display of stored strings.
 *
 * Calling sequence:
 *
 *   struct taskctl_table t;
 *   taskctl_table_init(&t, columns, num_tasks);   (columns: terminal width, or 80)
 *   taskctl_table_header(&t, out);
 *   for each record: taskctl_table_row(&t, out, &rec);
 *
 * Stored strings may hold anything a client sent: newlines, tabs, escape
 * sequences, invalid UTF-8 in files written by other programs. They are shown
 * with control characters escaped ("\n", "\t", "\x1b"), each invalid byte as
 * '?', and cut with "..." to their column, so one task is always one line and
 * nothing a client stored can drive the user's terminal. Widths are counted in
 * terminal columns (emoji and CJK take two), not bytes.
 */
#ifndef TASKSERVER_TASKCTL_TABLE_H
#define TASKSERVER_TASKCTL_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "task_json.h"

#define TASKCTL_TABLE_MIN_COLUMNS 40

struct taskctl_table {
    int id_width;     /* digits of the largest id */
    int titulo_width; /* what is left of the line for the titulo */
    int host;         /* the host column fits (wide terminals only) */
};

/* columns < TASKCTL_TABLE_MIN_COLUMNS is treated as that minimum. */
void taskctl_table_init(struct taskctl_table *t, int columns, uint64_t num_tasks);

void taskctl_table_header(const struct taskctl_table *t, FILE *out);

void taskctl_table_row(const struct taskctl_table *t, FILE *out, const struct task_record *rec);

/* Writes s[0 .. len) to out as at most max_cols terminal columns (escaped and
 * cut as described above). Returns the columns written. */
int taskctl_table_print_cell(FILE *out, const char *s, size_t len, int max_cols);

/* The terminal width of stdout, else $COLUMNS, else 80. */
int taskctl_table_columns(void);

#endif
