/* driver.h - what the C test drivers share (raw_http, fault_load, fault_stall,
 * fake_http_server): options from a table, the clock, a TCP client, whole sends, escapes,
 * and a look at the head of an HTTP message.
 *
 * Calling sequence:
 *
 *   static long port, clients = 8;
 *   static const struct driver_option options[] = {
 *       {'p', NULL, DRIVER_OPT_LONG, &port, 1, 65535, 1},
 *       {'c', NULL, DRIVER_OPT_LONG, &clients, 1, 64, 0},
 *   };
 *   int first = driver_options("fault_load", usage, argc, argv, options, 2, 0);
 *   int fd = driver_connect("127.0.0.1", port, 0);           (blocking, TCP_NODELAY)
 *   driver_send_all(fd, req, req_len);
 *   int status = driver_http_status(head, head_len);
 *   const char *v = driver_http_header(head, head_len, "Content-Length", &v_len);
 *
 * Errors: driver_options() exits with status 2 after one line naming the option and the
 * usage text (a driver's command line is written by a test: a mistake there is a bug of the
 * test, never something to carry on with). The other calls print nothing and return -1
 * (or NULL) with errno where there is one, so that the driver names what failed.
 */
#ifndef TASKSERVER_TESTS_DRIVER_H
#define TASKSERVER_TESTS_DRIVER_H

#include <stddef.h>

/* How an option's value is read. */
enum driver_opt_kind {
    DRIVER_OPT_LONG, /* decimal digits, optionally after '-', within [min, max]: a long */
    DRIVER_OPT_TEXT, /* any text: a const char * */
    DRIVER_OPT_FLAG, /* no value: an int set to 1 */
};

/* One row per option. */
struct driver_option {
    int letter;       /* 'p' for -p; 0 for a long option only */
    const char *name; /* "mode" for --mode, or NULL */
    enum driver_opt_kind kind;
    void *dest;    /* long *, const char ** or int *, by kind */
    long min, max; /* DRIVER_OPT_LONG: the accepted range */
    int required;  /* the command line must give it */
};

/* Parses argv by the table (getopt_long underneath; stop_at_operand: at the first operand,
 * for drivers whose operands look like options). Returns the index of the first operand. */
int driver_options(const char *prog, const char *usage, int argc, char **argv,
                   const struct driver_option *options, size_t num_options, int stop_at_operand);

/* CLOCK_MONOTONIC in milliseconds and nanoseconds; sleeps ms whatever the signals. */
long long driver_now_ms(void);
long long driver_now_ns(void);
void driver_sleep_ms(long ms);

/* A blocking TCP connection to the numeric IPv4 address addr, with TCP_NODELAY (a drip of
 * single bytes must leave as single segments). rcvbuf > 0 sets SO_RCVBUF before the
 * handshake, so that the window the peer sees is that small. Returns the descriptor, or -1
 * with errno (EINVAL for an address that is not numeric IPv4). */
int driver_connect(const char *addr, long port, int rcvbuf);

/* Sends all of buf (MSG_NOSIGNAL, EINTR retried; a blocking descriptor). Returns 0, or -1
 * with errno. */
int driver_send_all(int fd, const char *buf, size_t len);

/* Decodes the escapes \r \n \t \0 \\ \xHH of a test's text into a malloc'd buffer (exits 3
 * when memory runs out); anything else after '\' is kept as it is. Returns the buffer,
 * NUL-terminated, with its length in *out_len. */
char *driver_unescape(const char *s, size_t *out_len);

/* The status code of a response head starting "HTTP/1.x NNN", or -1. */
int driver_http_status(const char *head, size_t head_len);

/* The value of header field name (any case) in head, the first line skipped, blanks around
 * it trimmed, or NULL; *value_len gets its length. head is a request or response head, up
 * to its blank line or the end of head_len. */
const char *driver_http_header(const char *head, size_t head_len, const char *name,
                               size_t *value_len);

#endif
