/* client_spread.h - every address a server's name resolves to, each given its share of the tasks.
 *
 * Several servers behind one name (Docker's endpoint_mode dnsrr: `server` resolves to the
 * address of every replica) must each get work. libcurl alone would resolve the name, connect
 * to one address and keep that connection alive for the whole run: one replica would get
 * every task. So the client resolves the name itself (getaddrinfo), keeps the addresses whose
 * GET /health answers 200, and pins each request to one of them: task seq goes to address
 * (seq - 1) mod n (client_spread.c argues the choice).
 *
 *   struct client_spread sp;
 *   if (client_spread_find(&sp, base_url, want, wait_ms, timeout_ms, err, sizeof(err)) < 0)
 *       give up (errno EINVAL: a usage error, else unreachable), print err
 *   for each request: i = client_spread_pin(&sp, curl, seq); later client_spread_count(...)
 *   client_spread_release(&sp);
 *
 * With sp.num_addrs == 0 nothing is pinned: libcurl resolves and connects as it always did.
 * That is the case for a URL whose host is an address, and for a name with only one address
 * that answers (e.g. localhost, whose ::1 a server bound to 0.0.0.0 does not answer).
 *
 * Call curl_global_init() first. Every wait is bounded by wait_ms, every probe by timeout_ms.
 */
#ifndef TASKSERVER_CLIENT_SPREAD_H
#define TASKSERVER_CLIENT_SPREAD_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_SPREAD_MAX 64      /* addresses used at most; the rest are ignored (and said so) */
#define CLIENT_SPREAD_ADDR_MAX 48 /* "[" IPv6 "]" and the NUL */

struct client_spread_addr {
    char addr[CLIENT_SPREAD_ADDR_MAX]; /* numeric; IPv6 in brackets */
    void *connect_to;                  /* the struct curl_slist * of CURLOPT_CONNECT_TO */
    char health[256];                  /* its GET /health body, cut to fit */
    uint64_t num_sent, num_acked;      /* requests pinned to it, and their 201s */
};

struct client_spread {
    char host[256];       /* the URL's host */
    unsigned num_found;   /* addresses the name resolved to (at the last try) */
    unsigned num_addrs;   /* of them, those that answered and are used; 0: none pinned */
    unsigned num_ignored; /* answering addresses past CLIENT_SPREAD_MAX */
    struct client_spread_addr addrs[CLIENT_SPREAD_MAX];
};

/* Resolves the host of base_url (http://HOST:PORT, already checked) and probes GET
 * base_url/health at each of its addresses until at least want of them answer 200 or
 * wait_ms has passed (want 0 or 1: one round, no wait). Returns 0 with sp filled (num_addrs
 * 0 when nothing is to be pinned, see above), or -1 with err: errno EINVAL when want > 1
 * but the URL's host is an address, ETIMEDOUT when fewer than want answered in time (err
 * names the addresses and what each said), ENOMEM. sp needs client_spread_release() either
 * way. */
int client_spread_find(struct client_spread *sp, const char *base_url, unsigned want, long wait_ms,
                       long timeout_ms, char *err, size_t err_len);

/* Pins the next request of curl (a CURL *) for task seq (>= 1) to its address. Returns the
 * index of the address, or -1 when nothing is pinned (num_addrs 0). */
int client_spread_pin(struct client_spread *sp, void *curl, uint64_t seq);

/* Counts a finished request pinned to address i (from client_spread_pin). */
void client_spread_count(struct client_spread *sp, int i, int acked);

void client_spread_release(struct client_spread *sp);

#endif
