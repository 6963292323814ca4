/* net.c - sockets: listen, accept, non-blocking mode; EINTR handled inside. */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

/* "0.0.0.0:9000" or "[::1]:9000": how every message names the address. */
static void net_format_addr(const char *addr, unsigned port, char *out, size_t out_len)
{
    if (strchr(addr, ':') != NULL)
        snprintf(out, out_len, "[%s]:%u", addr, port);
    else
        snprintf(out, out_len, "%s:%u", addr, port);
}

static unsigned net_sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int net_listen(const char *addr, unsigned port, int backlog, unsigned *bound_port, char *err,
               size_t err_len)
{
    char name[128];
    char port_text[16];
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof(ss);
    int fd = -1;
    int one = 1;
    int saved_errno;
    const char *what;

    net_format_addr(addr, port, name, sizeof(name));
    if (port > 65535) {
        snprintf(err, err_len, "listen %s: port out of range", name);
        errno = EINVAL;
        return -1;
    }
    /* The kernel clamps the backlog to net.core.somaxconn by itself. */
    if (backlog <= 0)
        backlog = SOMAXCONN;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    snprintf(port_text, sizeof(port_text), "%u", port);
    int gai = getaddrinfo(addr, port_text, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "listen %s: %s", name,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        errno = gai == EAI_SYSTEM ? errno : EINVAL;
        return -1;
    }

    what = "socket";
    fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, res->ai_protocol);
    if (fd < 0)
        goto fail;
    /* Without it a restart fails with EADDRINUSE while old connections sit in TIME_WAIT. */
    what = "setsockopt SO_REUSEADDR";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    what = "bind";
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        goto fail;
    what = "listen";
    if (listen(fd, backlog) < 0)
        goto fail;
    what = "getsockname";
    if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) < 0)
        goto fail;
    freeaddrinfo(res);
    if (bound_port != NULL)
        *bound_port = net_sockaddr_port(&ss);
    return fd;

fail:
    saved_errno = errno;
    snprintf(err, err_len, "%s %s: %s", what, name, strerror(saved_errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    errno = saved_errno;
    return -1;
}

int net_accept(int listen_fd)
{
    int fd;
    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}
