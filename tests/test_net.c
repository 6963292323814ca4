/* test_net.c - net_listen() and net_accept(): the socket the master hands to every worker, and
 * each way of failing to make it, with the message that names the address (system calls made to
 * fail by tests/shim_fault.c, linked in). Everything on 127.0.0.1 (and ::1 when it exists). */
#include "net.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "shim_fault.h"

/* Open descriptors of this process: a failed net_listen() must leave none behind. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory stream's own */
}

/* A connection to 127.0.0.1:port, made (the listener's backlog takes it). */
static int connect_to(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* The listen backlog the kernel keeps for a listening socket (TCP_INFO reports it in
 * tcpi_sacked for a socket in LISTEN). */
static unsigned listen_backlog(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    return ti.tcpi_sacked;
}

static unsigned somaxconn(void)
{
    unsigned v = 0;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%u", &v), 1);
    fclose(f);
    return v;
}

START_TEST(test_listen_accept)
{
    char err[256] = "";
    unsigned port = 0;
    int fd = net_listen("127.0.0.1", 0, 16, &port, err, sizeof(err));
    ck_assert_msg(fd >= 0, "net_listen: %s", err);
    ck_assert_uint_gt(port, 0);
    ck_assert_uint_eq(listen_backlog(fd), 16);
    /* Non-blocking: nothing pending is EAGAIN, not a wait. */
    ck_assert_int_eq(net_accept(fd), -1);
    ck_assert_int_eq(errno, EAGAIN);
    int c = connect_to(port);
    int a = net_accept(fd);
    ck_assert_int_ge(a, 0);
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    ck_assert_int_eq(getpeername(a, (struct sockaddr *)&peer, &plen), 0);
    ck_assert_uint_eq(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
    close(a);
    close(c);
    close(fd);
}
END_TEST

/* A backlog of 0 or less asks for the largest one: SOMAXCONN, which the kernel clamps to
 * net.core.somaxconn. */
START_TEST(test_default_backlog)
{
    char err[256];
    unsigned port = 0;
    unsigned want = somaxconn() < SOMAXCONN ? somaxconn() : SOMAXCONN;
    for (int backlog = -1; backlog <= 0; backlog++) {
        int fd = net_listen("127.0.0.1", 0, backlog, &port, err, sizeof(err));
        ck_assert_msg(fd >= 0, "net_listen: %s", err);
        ck_assert_uint_eq(listen_backlog(fd), want);
        close(fd);
    }
}
END_TEST

/* The address in every message as an operator would type it back: IPv6 in brackets. */
static const struct {
    const char *addr;
    unsigned port;
    const char *err; /* the whole message, or its start when it ends in '*' */
    int errno_value;
} bad_addresses[] = {
    {"127.0.0.1", 65536, "listen 127.0.0.1:65536: port out of range", EINVAL},
    {"0.0.0.0", 100000, "listen 0.0.0.0:100000: port out of range", EINVAL},
    {"::1", 70000, "listen [::1]:70000: port out of range", EINVAL},
    {"localhost", 9000, "listen localhost:9000: *", EINVAL}, /* numeric only: no DNS */
    {"300.1.1.1", 9000, "listen 300.1.1.1:9000: *", EINVAL},
    {"", 9000, "listen :9000: *", EINVAL},
};

START_TEST(test_bad_address)
{
    char err[256] = "";
    unsigned port = 12345;
    int before = open_fds();
    errno = 0;
    ck_assert_int_eq(
        net_listen(bad_addresses[_i].addr, bad_addresses[_i].port, 16, &port, err, sizeof(err)),
        -1);
    ck_assert_int_eq(errno, bad_addresses[_i].errno_value);
    const char *want = bad_addresses[_i].err;
    size_t n = strlen(want);
    if (want[n - 1] == '*') {
        ck_assert_msg(strncmp(err, want, n - 1) == 0 && strlen(err) > n - 1,
                      "expected \"%s\", got \"%s\"", want, err);
        /* getaddrinfo's own words follow, not an empty reason. */
        ck_assert_str_eq(err + n - 1, gai_strerror(EAI_NONAME));
    } else {
        ck_assert_str_eq(err, want);
    }
    ck_assert_uint_eq(port, 12345); /* not written on failure */
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* A port someone else listens on: bind fails, the message names it, nothing leaks. */
START_TEST(test_port_in_use)
{
    char err[256], want[256];
    unsigned port = 0;
    int fd = net_listen("127.0.0.1", 0, 16, &port, err, sizeof(err));
    ck_assert_msg(fd >= 0, "net_listen: %s", err);
    int before = open_fds();
    ck_assert_int_eq(net_listen("127.0.0.1", port, 16, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    snprintf(want, sizeof(want), "bind 127.0.0.1:%u: %s", port, strerror(EADDRINUSE));
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(open_fds(), before);
    close(fd);
}
END_TEST

/* No descriptor left: the socket call itself fails. */
START_TEST(test_no_descriptor)
{
    char err[256];
    /* The lowest free descriptor becomes the limit: the next one cannot be had. */
    int probe = dup(0);
    ck_assert_int_ge(probe, 0);
    close(probe);
    /* Only the soft limit, put back before the end: LeakSanitizer's check at exit needs
     * descriptors of its own. */
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    rl = old;
    rl.rlim_cur = (rlim_t)probe;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int fd = net_listen("127.0.0.1", 0, 16, NULL, err, sizeof(err));
    int saved = errno;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(saved, EMFILE);
    ck_assert_str_eq(err, "socket 127.0.0.1:0: Too many open files");
}
END_TEST

/* Each later step failing: the message says which, errno is the call's, and the socket
 * made before it is closed. */
static const struct {
    const char *rule;
    const char *err;
    int errno_value;
} failing_steps[] = {
    {"setsockopt=ENOPROTOOPT", "setsockopt SO_REUSEADDR 127.0.0.1:0: Protocol not available",
     ENOPROTOOPT},
    {"bind=EACCES", "bind 127.0.0.1:0: Permission denied", EACCES},
    {"listen=EOPNOTSUPP", "listen 127.0.0.1:0: Operation not supported", EOPNOTSUPP},
    {"getsockname=ENOBUFS", "getsockname 127.0.0.1:0: No buffer space available", ENOBUFS},
    {"socket=EAFNOSUPPORT", "socket 127.0.0.1:0: Address family not supported by protocol",
     EAFNOSUPPORT},
};

START_TEST(test_failing_step)
{
    char err[256];
    int before = open_fds();
    ck_assert_int_eq(shim_fault_set(failing_steps[_i].rule), 0);
    int fd = net_listen("127.0.0.1", 0, 16, NULL, err, sizeof(err));
    int e = errno;
    unsigned long hits = shim_fault_hits();
    shim_fault_set(NULL);
    ck_assert_int_eq(fd, -1);
    ck_assert_uint_eq(hits, 1);
    ck_assert_int_eq(e, failing_steps[_i].errno_value);
    ck_assert_str_eq(err, failing_steps[_i].err);
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* accept4 interrupted by a signal is tried again, not reported. */
START_TEST(test_accept_eintr)
{
    char err[256];
    unsigned port = 0;
    int fd = net_listen("127.0.0.1", 0, 16, &port, err, sizeof(err));
    ck_assert_msg(fd >= 0, "net_listen: %s", err);
    int c = connect_to(port);
    ck_assert_int_eq(shim_fault_set("accept4=EINTR,times=2"), 0);
    int a = net_accept(fd);
    unsigned long hits = shim_fault_hits();
    shim_fault_set(NULL);
    ck_assert_uint_eq(hits, 2);
    ck_assert_int_ge(a, 0);
    close(a);
    close(c);
    close(fd);
}
END_TEST

/* IPv6 loopback, where the machine has it: the port read back from an IPv6 address. */
START_TEST(test_ipv6_loopback)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int have = probe >= 0 && bind(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (probe >= 0)
        close(probe);
    if (!have) {
        fprintf(stderr, "test_ipv6_loopback: no ::1 here, nothing to check\n");
        return;
    }
    char err[256];
    unsigned port = 0;
    int fd = net_listen("::1", 0, 16, &port, err, sizeof(err));
    ck_assert_msg(fd >= 0, "net_listen: %s", err);
    struct sockaddr_in6 got;
    socklen_t len = sizeof(got);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&got, &len), 0);
    ck_assert_int_eq(got.sin6_family, AF_INET6);
    ck_assert_uint_gt(port, 0);
    ck_assert_uint_eq(port, ntohs(got.sin6_port));
    close(fd);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_add_test(tc, test_listen_accept);
    tcase_add_test(tc, test_default_backlog);
    tcase_add_loop_test(tc, test_bad_address, 0, sizeof(bad_addresses) / sizeof(bad_addresses[0]));
    tcase_add_test(tc, test_port_in_use);
    tcase_add_test(tc, test_no_descriptor);
    tcase_add_loop_test(tc, test_failing_step, 0, sizeof(failing_steps) / sizeof(failing_steps[0]));
    tcase_add_test(tc, test_accept_eintr);
    tcase_add_test(tc, test_ipv6_loopback);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
