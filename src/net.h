/* net.h - sockets: listen, accept, non-blocking mode; EINTR handled inside.
 *
 * Return convention: a descriptor or 0 on success, -1 with errno on failure;
 * net_listen() also writes a message naming the address into err.
 */
#ifndef TASKSERVER_NET_H
#define TASKSERVER_NET_H

#include <stddef.h>

/* Binds and listens on addr:port (numeric IPv4 or IPv6; port 0 picks one),
 * SO_REUSEADDR, close-on-exec, non-blocking. *bound_port receives the real
 * port. Returns the descriptor or -1 with err. */
int net_listen(const char *addr, unsigned port, int backlog, unsigned *bound_port, char *err,
               size_t err_len);

/* accept4() with SOCK_NONBLOCK | SOCK_CLOEXEC, retried on EINTR. Returns the
 * descriptor or -1 with errno (EAGAIN when none is pending). */
int net_accept(int listen_fd);

#endif
