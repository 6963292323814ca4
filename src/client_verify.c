/* client_verify.c - streams GET /tareas line by line and checks one client's tasks. */
#include "client_verify.h"

#include "task_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A line may legitimately hold one record of up to TASK_JSON_RECORD_MAX bytes;
 * twice that leaves room for the two-records-on-a-line damage of the
 * unlocked build before a line is given up as too long. */
#define CLIENT_VERIFY_LINE_MAX (2 * TASK_JSON_RECORD_MAX)

/* Ids are 1..n; a bitmap indexed by id finds duplicates in n/8 bytes. Above
 * this bound (128 MB of bitmap) ids are only checked for order. */
#define CLIENT_VERIFY_ID_BITS_MAX ((uint64_t)1 << 30)

struct client_verify {
    char *cliente;
    size_t cliente_len;
    uint64_t num_tasks;
    const unsigned char *acked; /* caller's, or NULL: all acknowledged */
    unsigned char *seen;        /* seq-1 found once */
    unsigned char *twice;       /* seq-1 found more than once */
    unsigned char *ids;         /* id found */
    size_t ids_bytes;
    uint64_t prev_id;
    uint64_t min_id;  /* records below it are an earlier run's */
    int prev_mine;    /* the previous record at or above min_id: -1 none, 0 another's, 1 mine */
    int after_record; /* the last thing read was a record not followed by ',' */
    int after_comma;  /* the last thing read was the ',' after a record */
    uint64_t line_no;
    uint64_t damaged_line; /* the last line counted as damaged (one count per line) */
    char *line;            /* the partial line carried between feeds */
    size_t line_len;
    int line_too_long;
    int finished;
    struct task_record rec;
    struct client_verify_result r;
};

static int bit_get(const unsigned char *map, uint64_t i)
{
    return (map[i >> 3] >> (i & 7)) & 1;
}

static void bit_set(unsigned char *map, uint64_t i)
{
    map[i >> 3] |= (unsigned char)(1u << (i & 7));
}

struct client_verify *client_verify_new(const char *cliente, uint64_t num_tasks,
                                        const unsigned char *acked, uint64_t min_id)
{
    size_t map_bytes = (size_t)(num_tasks / 8 + 1);
    struct client_verify *v = calloc(1, sizeof(*v));
    if (!v)
        goto fail;
    v->cliente = strdup(cliente);
    v->cliente_len = strlen(cliente);
    v->num_tasks = num_tasks;
    v->acked = acked;
    v->min_id = min_id;
    v->prev_mine = -1;
    v->seen = calloc(map_bytes, 1);
    v->twice = calloc(map_bytes, 1);
    v->line = malloc(CLIENT_VERIFY_LINE_MAX);
    if (!v->cliente || !v->seen || !v->twice || !v->line)
        goto fail;
    return v;
fail:
    client_verify_free(v);
    errno = ENOMEM;
    return NULL;
}

static void client_verify_damage(struct client_verify *v, const char *what, size_t offset)
{
    if (v->damaged_line == v->line_no)
        return; /* a damaged line counts once, whatever else is wrong with it */
    v->damaged_line = v->line_no;
    if (v->r.num_damaged_lines++ == 0) {
        v->r.first_damaged_line = v->line_no;
        snprintf(v->r.first_damage, sizeof(v->r.first_damage), "%s (byte %zu of the line)", what,
                 offset);
    }
}

/* Grows the id bitmap to hold id; -1 when memory runs out. */
static int client_verify_grow_ids(struct client_verify *v, uint64_t id)
{
    size_t need = (size_t)(id / 8 + 1);
    if (need <= v->ids_bytes)
        return 0;
    size_t cap = v->ids_bytes ? v->ids_bytes : 4096;
    while (cap < need)
        cap *= 2;
    unsigned char *p = realloc(v->ids, cap);
    if (!p)
        return -1;
    memset(p + v->ids_bytes, 0, cap - v->ids_bytes);
    v->ids = p;
    v->ids_bytes = cap;
    return 0;
}

static int client_verify_record(struct client_verify *v, const struct task_record *rec)
{
    int rc = 0;
    v->r.num_records++;
    if (v->prev_id && rec->id <= v->prev_id)
        v->r.num_out_of_order++;
    v->prev_id = rec->id;
    if (rec->id < CLIENT_VERIFY_ID_BITS_MAX) {
        if (client_verify_grow_ids(v, rec->id) < 0) {
            rc = -1;
        } else if (bit_get(v->ids, rec->id)) {
            if (v->r.num_dup_ids < CLIENT_VERIFY_FIRST)
                v->r.dup_ids[v->r.num_dup_ids] = rec->id;
            v->r.num_dup_ids++;
        } else {
            bit_set(v->ids, rec->id);
        }
    }
    const struct task *t = &rec->task;
    int mine = t->has_cliente && t->cliente_len == v->cliente_len &&
               memcmp(t->cliente, v->cliente, v->cliente_len) == 0;
    if (rec->id < v->min_id) {
        v->r.num_earlier += mine;
        return rc;
    }
    v->r.num_in_run++;
    if (v->prev_mine >= 0 && v->prev_mine != mine)
        v->r.num_switches++;
    if (mine && v->prev_mine != 1)
        v->r.num_blocks++;
    v->prev_mine = mine;
    if (!mine)
        return rc;
    if (t->seq < 1 || (uint64_t)t->seq > v->num_tasks)
        return rc;
    uint64_t i = (uint64_t)t->seq - 1;
    v->r.num_mine++;
    if (bit_get(v->seen, i))
        bit_set(v->twice, i);
    else
        bit_set(v->seen, i);
    return rc;
}

/* Any layout a JSON writer may use: spaces around items, several on a line. */
#define CLIENT_VERIFY_ITEMS (TASK_JSON_LINE_SPACES | TASK_JSON_LINE_ITEMS)

/* Judges one item of a line, it, read at byte p of the line (len bytes).
 * Returns 1 to go on with the next item, 0 when the rest of the line is done
 * with, -1 when memory ran out (the item was still counted). */
static int client_verify_item(struct client_verify *v, const struct task_json_line *it, size_t p,
                              size_t len)
{
    switch (it->kind) {
    case TASK_JSON_LINE_BLANK:
        return 0;
    case TASK_JSON_LINE_CLOSE:
        if (v->after_comma)
            client_verify_damage(v, "a ',' before the closing bracket", p + it->start);
        v->r.saw_close = 1;
        v->after_comma = v->after_record = 0;
        if (p + it->next < len)
            client_verify_damage(v, "bytes after the closing bracket", p + it->next);
        return 0;
    case TASK_JSON_LINE_COMMA:
        if (!v->after_record) {
            client_verify_damage(v, "a ',' without a record before it", p + it->start);
            return 0;
        }
        v->after_record = 0;
        v->after_comma = 1;
        return 1;
    case TASK_JSON_LINE_RECORD:
        if (v->after_record)
            client_verify_damage(v, "no ',' between two records", p + it->start);
        v->after_record = !it->comma;
        v->after_comma = it->comma;
        return client_verify_record(v, &v->rec) < 0 ? -1 : 1;
    case TASK_JSON_LINE_DAMAGE:
        if (it->damage != TASK_JSON_DAMAGE_BAD_RECORD)
            break;
        if (v->after_record)
            client_verify_damage(v, "no ',' between two records", p + it->start);
        client_verify_damage(v, it->why, p + it->at);
        /* The rest of this line is unreadable; the next line starts afresh,
         * so one damaged line counts once. */
        v->after_record = 0;
        v->after_comma = 0;
        return 0;
    case TASK_JSON_LINE_OPEN:
        break;
    }
    client_verify_damage(v, "not a record", p + it->start);
    return 0;
}

/* Reads one line of the list: "[", "]", "{record}," or "{record}", and
 * tolerates "[{...}]" and damage, counting what it can. */
static int client_verify_line(struct client_verify *v, const char *text, size_t len)
{
    int rc = 0, more;
    size_t p = 0;
    struct task_json_line it;

    v->line_no++;
    task_json_line_read(text, len, CLIENT_VERIFY_ITEMS, &v->rec, &it);
    if (it.kind == TASK_JSON_LINE_BLANK)
        return 0;
    if (v->r.saw_close) {
        client_verify_damage(v, "bytes after the closing bracket", it.start);
        /* Records there are still read: writers without the lock leave a "]" in the
         * middle of the list (one append's end overwritten by another's shorter one) and
         * go on appending after it, and a reader of the lines finds those tasks. */
        if (it.kind != TASK_JSON_LINE_RECORD && it.damage != TASK_JSON_DAMAGE_BAD_RECORD)
            return 0;
    } else if (it.kind == TASK_JSON_LINE_OPEN) {
        if (v->r.saw_open || v->r.num_records) {
            client_verify_damage(v, "a second '['", it.start);
            return 0;
        }
        v->r.saw_open = 1;
        p = it.next;
        task_json_line_read(text + p, len - p, CLIENT_VERIFY_ITEMS, &v->rec, &it);
    } else if (!v->r.saw_open) {
        client_verify_damage(v, "the list does not start with '['", it.start);
        v->r.saw_open = 1; /* say it once; read the records anyway */
    }
    while ((more = client_verify_item(v, &it, p, len)) != 0) {
        if (more < 0)
            rc = -1;
        p += it.next;
        task_json_line_read(text + p, len - p, CLIENT_VERIFY_ITEMS, &v->rec, &it);
    }
    return rc;
}

long client_verify_feed(struct client_verify *v, const char *data, size_t len)
{
    int rc = 0;
    size_t p = 0;
    while (p < len) {
        const char *nl = memchr(data + p, '\n', len - p);
        size_t n = nl ? (size_t)(nl - (data + p)) : len - p;
        if (v->line_len == 0 && !v->line_too_long && nl && n <= CLIENT_VERIFY_LINE_MAX) {
            /* The whole line is in data: read it in place, without a copy (within the
             * same limit as a line that arrives in pieces: the verdict must not depend
             * on how the bytes arrived). */
            if (client_verify_line(v, data + p, n) < 0)
                rc = -1;
        } else {
            if (!v->line_too_long && v->line_len + n <= CLIENT_VERIFY_LINE_MAX) {
                memcpy(v->line + v->line_len, data + p, n);
                v->line_len += n;
            } else {
                v->line_too_long = 1;
            }
            if (nl) {
                if (v->line_too_long) {
                    v->line_no++;
                    client_verify_damage(v, "line too long", CLIENT_VERIFY_LINE_MAX);
                } else if (client_verify_line(v, v->line, v->line_len) < 0) {
                    rc = -1;
                }
                v->line_len = 0;
                v->line_too_long = 0;
            }
        }
        p += n + (nl ? 1 : 0);
    }
    if (rc < 0) {
        errno = ENOMEM;
        return -1;
    }
    return (long)len;
}

void client_verify_finish(struct client_verify *v)
{
    if (v->finished)
        return;
    v->finished = 1;
    if (v->line_too_long) {
        v->line_no++;
        client_verify_damage(v, "line too long", CLIENT_VERIFY_LINE_MAX);
    } else if (v->line_len) {
        client_verify_line(v, v->line, v->line_len);
    }
    v->line_len = 0;
    for (uint64_t i = 0; i < v->num_tasks; i++) {
        int acked = v->acked ? bit_get(v->acked, i) : 1;
        int seen = bit_get(v->seen, i);
        if (acked) {
            v->r.num_acked++;
            if (seen) {
                v->r.num_stored++;
            } else {
                if (v->r.num_missing < CLIENT_VERIFY_FIRST)
                    v->r.missing[v->r.num_missing] = i + 1;
                v->r.num_missing++;
            }
        } else if (seen) {
            v->r.num_unacked_stored++;
        }
        if (bit_get(v->twice, i)) {
            if (v->r.num_doubled < CLIENT_VERIFY_FIRST)
                v->r.doubled[v->r.num_doubled] = i + 1;
            v->r.num_doubled++;
        }
    }
}

const struct client_verify_result *client_verify_result(const struct client_verify *v)
{
    return &v->r;
}

int client_verify_ok(const struct client_verify *v)
{
    const struct client_verify_result *r = &v->r;
    return r->num_missing == 0 && r->num_doubled == 0 && r->num_dup_ids == 0 &&
           r->num_out_of_order == 0 && r->num_damaged_lines == 0 && r->saw_open && r->saw_close;
}

static void print_list(FILE *out, const uint64_t *xs, uint64_t num)
{
    uint64_t n = num < CLIENT_VERIFY_FIRST ? num : CLIENT_VERIFY_FIRST;
    for (uint64_t i = 0; i < n; i++)
        fprintf(out, "%s%llu", i ? " " : "", (unsigned long long)xs[i]);
    if (num > n)
        fputs(" ...", out);
}

void client_verify_print_text(const struct client_verify *v, FILE *out, const char *where,
                              const char *note)
{
    const struct client_verify_result *r = &v->r;
    fprintf(out,
            "verify %s: %llu records in the list; client \"%s\": %llu acknowledged, "
            "%llu stored, %llu missing, %llu doubled\n",
            where, (unsigned long long)r->num_records, v->cliente, (unsigned long long)r->num_acked,
            (unsigned long long)r->num_stored, (unsigned long long)r->num_missing,
            (unsigned long long)r->num_doubled);
    if (r->num_earlier)
        fprintf(out,
                "  earlier runs: %llu more records of \"%s\" below id %llu, the first id this "
                "run was given: not this run's, not counted\n",
                (unsigned long long)r->num_earlier, v->cliente, (unsigned long long)v->min_id);
    if (r->num_stored + r->num_doubled > 0 && r->num_in_run > r->num_mine)
        fprintf(out,
                "  interleaving: this client's records lie in %llu blocks among %llu records of "
                "this run; %llu switches to or from another client in list order\n",
                (unsigned long long)r->num_blocks, (unsigned long long)r->num_in_run,
                (unsigned long long)r->num_switches);
    if (r->num_missing) {
        fprintf(out, "  missing seq (first %d): ", CLIENT_VERIFY_FIRST);
        print_list(out, r->missing, r->num_missing);
        fputc('\n', out);
    }
    if (r->num_doubled) {
        fprintf(out, "  doubled seq (first %d): ", CLIENT_VERIFY_FIRST);
        print_list(out, r->doubled, r->num_doubled);
        fputc('\n', out);
    }
    if (r->num_unacked_stored)
        fprintf(out, "  stored although the request failed: %llu\n",
                (unsigned long long)r->num_unacked_stored);
    if (r->num_dup_ids) {
        fprintf(out, "  duplicate ids in the list: %llu (first %d): ",
                (unsigned long long)r->num_dup_ids, CLIENT_VERIFY_FIRST);
        print_list(out, r->dup_ids, r->num_dup_ids);
        fputc('\n', out);
    }
    if (r->num_out_of_order)
        fprintf(out, "  ids not increasing: %llu times\n", (unsigned long long)r->num_out_of_order);
    if (r->num_damaged_lines)
        fprintf(out, "  damaged lines: %llu, the first at line %llu: %s\n",
                (unsigned long long)r->num_damaged_lines, (unsigned long long)r->first_damaged_line,
                r->first_damage);
    if (!r->saw_open || !r->saw_close)
        fprintf(out, "  the list is not a closed JSON array (no '%s')\n", r->saw_open ? "]" : "[");
    if (client_verify_ok(v))
        fputs("verdict: OK, every acknowledged task is stored exactly once", out);
    else
        fprintf(out,
                "verdict: FAILED, %llu lost, %llu doubled, %llu duplicate ids, "
                "%llu damaged lines",
                (unsigned long long)r->num_missing, (unsigned long long)r->num_doubled,
                (unsigned long long)r->num_dup_ids, (unsigned long long)r->num_damaged_lines);
    if (note != NULL && note[0] != '\0')
        fprintf(out, " (%s)", note);
    fputc('\n', out);
}

static void print_json_list(FILE *out, const char *name, const uint64_t *xs, uint64_t num)
{
    uint64_t n = num < CLIENT_VERIFY_FIRST ? num : CLIENT_VERIFY_FIRST;
    fprintf(out, ",\"%s\":[", name);
    for (uint64_t i = 0; i < n; i++)
        fprintf(out, "%s%llu", i ? "," : "", (unsigned long long)xs[i]);
    fputc(']', out);
}

void client_verify_print_json(const struct client_verify *v, FILE *out)
{
    const struct client_verify_result *r = &v->r;
    fprintf(out,
            "{\"ok\":%s,\"records\":%llu,\"mine\":%llu,\"acknowledged\":%llu,\"stored\":%llu,"
            "\"missing\":%llu,\"doubled\":%llu,\"stored_unacknowledged\":%llu,"
            "\"duplicate_ids\":%llu,\"out_of_order\":%llu,\"damaged_lines\":%llu,"
            "\"earlier_runs\":%llu,\"first_id\":%llu,\"run_records\":%llu,\"blocks\":%llu,"
            "\"switches\":%llu,\"closed_array\":%s",
            client_verify_ok(v) ? "true" : "false", (unsigned long long)r->num_records,
            (unsigned long long)r->num_mine, (unsigned long long)r->num_acked,
            (unsigned long long)r->num_stored, (unsigned long long)r->num_missing,
            (unsigned long long)r->num_doubled, (unsigned long long)r->num_unacked_stored,
            (unsigned long long)r->num_dup_ids, (unsigned long long)r->num_out_of_order,
            (unsigned long long)r->num_damaged_lines, (unsigned long long)r->num_earlier,
            (unsigned long long)v->min_id, (unsigned long long)r->num_in_run,
            (unsigned long long)r->num_blocks, (unsigned long long)r->num_switches,
            r->saw_open && r->saw_close ? "true" : "false");
    print_json_list(out, "missing_first", r->missing, r->num_missing);
    print_json_list(out, "doubled_first", r->doubled, r->num_doubled);
    print_json_list(out, "duplicate_ids_first", r->dup_ids, r->num_dup_ids);
    fputc('}', out);
}

void client_verify_free(struct client_verify *v)
{
    if (!v)
        return;
    free(v->cliente);
    free(v->seen);
    free(v->twice);
    free(v->ids);
    free(v->line);
    free(v);
}
