/* client_verify.h - checks a streamed GET /tareas against what one client sent.
 *
 * Calling sequence:
 *
 *   struct client_verify *v = client_verify_new(cliente, num_tasks, acked, min_id);
 *   while (bytes arrive)                      (e.g. from a curl write callback)
 *       client_verify_feed(v, data, len);     (any split: mid-line, mid-UTF-8)
 *   client_verify_finish(v);                  (reads an unterminated last line)
 *   const struct client_verify_result *r = client_verify_result(v);
 *   client_verify_free(v);
 *
 * acked is a bitmap of num_tasks bits (bit seq-1 set when task seq got its
 * 201), owned by the caller and read until client_verify_free(); NULL means
 * every seq 1..num_tasks counts as acknowledged (checking a file after other
 * processes did the sending).
 *
 * Runs. The same client id may have sent before, into the same list (a second
 * `up` of the classroom, the same --id twice). min_id is the lowest id this
 * run's 201s carried (client_stats.min_acked_id): the store gives ids in file
 * order, so every task of this run is at or above it, and this client's
 * records below it are an earlier run's: counted in num_earlier, never as
 * doubled. 0 counts every record of the client as this run's (--verify-only).
 *
 * Interleaving. Among the records at or above min_id, in list order, the
 * verifier counts this client's blocks (maximal runs of its own records) and
 * the switches between its records and another client's: with two clients
 * that send at once, the switches show how much their appends alternated.
 *
 * The list is the store's layout, one record per line ("[", "{...},", ...,
 * "]"), but it is read defensively: the unlocked build can serve a damaged
 * list (two records on a line, a record cut short, bytes after the closing
 * bracket). A line that cannot be read in full is counted as damaged (once,
 * whatever else is wrong with it) and the reading goes on with the next line,
 * so whatever can be read is counted: also the records on lines after a "]"
 * in the middle, which writers without the lock leave and append after.
 *
 * Memory: three bitmaps of num_tasks bits for this client's seq numbers, one
 * bitmap indexed by id for the duplicate-id check (max id / 8 bytes, the
 * ids being 1..n), and one line buffer. Never the list itself: a list of a
 * million tasks costs about 125 KB of bitmap.
 */
#ifndef TASKSERVER_CLIENT_VERIFY_H
#define TASKSERVER_CLIENT_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLIENT_VERIFY_FIRST 20 /* how many seq numbers / ids each report lists */

struct client_verify_result {
    uint64_t num_records;                  /* records read in the whole list */
    uint64_t num_mine;                     /* of them, this client's with seq in 1..num_tasks */
    uint64_t num_acked;                    /* bits set in acked */
    uint64_t num_stored;                   /* acknowledged seq numbers found at least once */
    uint64_t num_missing;                  /* acknowledged, not found */
    uint64_t num_doubled;                  /* seq numbers found more than once */
    uint64_t num_unacked_stored;           /* found although their request failed */
    uint64_t num_dup_ids;                  /* records whose id was already seen */
    uint64_t num_out_of_order;             /* records whose id is not above the previous one */
    uint64_t num_damaged_lines;            /* lines that could not be read in full */
    uint64_t num_earlier;                  /* this client's records below min_id */
    uint64_t num_in_run;                   /* records at or above min_id, any client's */
    uint64_t num_blocks;                   /* runs of this client's records among them */
    uint64_t num_switches;                 /* this client <-> another, adjacent among them */
    uint64_t first_damaged_line;           /* 1-based line number, 0 when none */
    char first_damage[200];                /* what was wrong with it */
    int saw_open, saw_close;               /* the "[" and "]" of the array */
    uint64_t missing[CLIENT_VERIFY_FIRST]; /* first missing seq numbers, ascending */
    uint64_t doubled[CLIENT_VERIFY_FIRST]; /* first doubled seq numbers, ascending */
    uint64_t dup_ids[CLIENT_VERIFY_FIRST]; /* first duplicate ids, in list order */
};

struct client_verify;

/* Returns a verifier, or NULL with errno ENOMEM. cliente is copied. */
struct client_verify *client_verify_new(const char *cliente, uint64_t num_tasks,
                                        const unsigned char *acked, uint64_t min_id);

/* Consumes data. Returns len, or -1 with errno ENOMEM (the id bitmap could
 * not grow); the verifier then stays usable with what it has read. */
long client_verify_feed(struct client_verify *v, const char *data, size_t len);

/* Ends the stream: reads a last line without newline and computes the
 * missing and doubled lists. Call once, after the last feed. */
void client_verify_finish(struct client_verify *v);

/* The counts; complete after client_verify_finish(). */
const struct client_verify_result *client_verify_result(const struct client_verify *v);

/* 1 when every acknowledged task is stored exactly once, no id repeats or
 * goes backwards, no line is damaged and the array is closed; else 0. */
int client_verify_ok(const struct client_verify *v);

/* The verdict in words, several lines; where names the list (its URL), note (may be NULL)
 * ends the verdict line in parentheses, e.g. "server locking=true". */
void client_verify_print_text(const struct client_verify *v, FILE *out, const char *where,
                              const char *note);

/* The verdict as one JSON object. */
void client_verify_print_json(const struct client_verify *v, FILE *out);

void client_verify_free(struct client_verify *v);

#endif
