/* client_spread.c - resolve a server name to all its addresses and pin each request to one.
 *
 * Why pin with CURLOPT_CONNECT_TO, per request, on the handles of the one multi handle:
 *
 * - libcurl by itself cannot spread: it resolves the name, connects to the first address that
 *   accepts, and reuses that keep-alive connection for every later request. Re-resolving does
 *   not help while a connection lives (and Docker's DNS answers with the addresses in a new
 *   order each time, so even fresh connections would land unevenly).
 * - CURLOPT_RESOLVE fills the DNS cache, which the multi handle shares between its easy
 *   handles: it maps the name to one address for all of them, not one per handle.
 * - CURLOPT_CONNECT_TO is per easy handle, leaves the URL (and so the Host header) alone, and
 *   libcurl keys its connection cache by the connect-to target: a connection to one address
 *   is only ever reused for a request pinned to that address. The multi handle's one cache
 *   thus holds one pool of keep-alive connections per address; no second multi loop needed.
 *
 * Why by task seq, (seq - 1) mod n, and not one address per connection: with --interval-ms
 * one task is in flight at a time and the first free handle takes it, so handles bound to
 * addresses would send everything to the first one. By seq every address gets its n-th of
 * the tasks whatever the pacing and the concurrency, which is what the run must show (every
 * replica stores work). A slow replica does not get fewer tasks: it makes the run slower,
 * which a load balancer would hide and a class should see.
 *
 * Only addresses that answer GET /health are used: a name may carry addresses nothing
 * listens on (localhost's ::1 beside 127.0.0.1, with a server bound to 0.0.0.0).
 */
#include "client_spread.h"

#include "client_http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SPREAD_FOUND_MAX 256     /* addresses looked at per resolution */
#define SPREAD_RETRY_MS 250      /* between two rounds of resolving and probing */
#define SPREAD_PROBE_MAX_MS 2000 /* one probe, at most */

/* The host and port of url, the port defaulted from the scheme. Returns 0 or -1 with err. */
static int spread_host_port(const char *url, char *host, size_t host_cap, char *port,
                            size_t port_cap, char *err, size_t err_len)
{
    int rc = -1;
    char *h = NULL, *p = NULL;
    CURLU *u = curl_url();
    if (u == NULL) {
        errno = ENOMEM;
        snprintf(err, err_len, "url %s: out of memory", url);
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        errno = EINVAL;
        snprintf(err, err_len, "url %s: no host or port", url);
        goto done;
    }
    if (strlen(h) >= host_cap || strlen(p) >= port_cap) {
        errno = EINVAL;
        snprintf(err, err_len, "url %s: host name too long", url);
        goto done;
    }
    strcpy(host, h);
    strcpy(port, p);
    rc = 0;
done:
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

/* 1 when host is an address (IPv4, or IPv6 in brackets as URLs write it), not a name. */
static int spread_is_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    char v6[64];
    size_t n = strlen(host);
    if (inet_pton(AF_INET, host, buf) == 1)
        return 1;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(v6)) {
        memcpy(v6, host + 1, n - 2);
        v6[n - 2] = '\0';
        char *zone = strchr(v6, '%');
        if (zone != NULL)
            *zone = '\0';
        return inet_pton(AF_INET6, v6, buf) == 1;
    }
    return 0;
}

/* The distinct addresses of host, numeric (IPv6 in brackets), in the resolver's order. Returns
 * how many (at most cap), or -1 with err. */
static int spread_resolve(const char *host, const char *port, char (*out)[CLIENT_SPREAD_ADDR_MAX],
                          unsigned cap, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
        snprintf(err, err_len, "resolve %s: %s", host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    unsigned n = 0;
    for (const struct addrinfo *ai = res; ai != NULL && n < cap; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN], addr[CLIENT_SPREAD_ADDR_MAX];
        const void *a;
        if (ai->ai_family == AF_INET)
            a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
        else
            continue;
        if (inet_ntop(ai->ai_family, a, text, sizeof(text)) == NULL)
            continue;
        snprintf(addr, sizeof(addr), ai->ai_family == AF_INET6 ? "[%s]" : "%s", text);
        unsigned j = 0;
        while (j < n && strcmp(out[j], addr) != 0)
            j++;
        if (j == n)
            memcpy(out[n++], addr, sizeof(addr));
    }
    freeaddrinfo(res);
    return (int)n;
}

static void spread_clear(struct client_spread *sp)
{
    for (unsigned i = 0; i < sp->num_addrs; i++) {
        curl_slist_free_all(sp->addrs[i].connect_to);
        sp->addrs[i].connect_to = NULL;
    }
    sp->num_addrs = sp->num_ignored = 0;
}

/* One round: resolve, then GET /health at each address. Fills sp with those that answer; a
 * description of those that did not goes to why. Returns 0, or -1 with err (resolving or
 * memory failed). */
static int spread_round(struct client_spread *sp, const char *host, const char *port,
                        const char *health_url, unsigned want, long timeout_ms, char *why,
                        size_t why_len, char *err, size_t err_len)
{
    static char found[SPREAD_FOUND_MAX][CLIENT_SPREAD_ADDR_MAX];
    size_t used = 0;
    spread_clear(sp);
    why[0] = '\0';
    int n = spread_resolve(host, port, found, SPREAD_FOUND_MAX, err, err_len);
    if (n < 0)
        return -1;
    sp->num_found = (unsigned)n;
    /* One address and no minimum: nothing to spread, and no probe to send. */
    if (n < 2 && want <= 1)
        return 0;
    for (int i = 0; i < n; i++) {
        char entry[CLIENT_SPREAD_ADDR_MAX + 32], msg[512];
        struct client_http_health h;
        int code;
        /* "::ADDR:PORT": any host and port of the URL, connected at ADDR:PORT. */
        snprintf(entry, sizeof(entry), "::%.*s:%s", CLIENT_SPREAD_ADDR_MAX - 1, found[i], port);
        struct curl_slist *to = curl_slist_append(NULL, entry);
        if (to == NULL) {
            errno = ENOMEM;
            snprintf(err, err_len, "%s: out of memory", health_url);
            return -1;
        }
        if (client_http_health_get_at(health_url, to, timeout_ms, &h, &code, msg, sizeof(msg)) <
            0) {
            curl_slist_free_all(to);
            int w =
                snprintf(why + used, why_len - used, "%s%s: %s", used ? "; " : "", found[i], msg);
            if (w > 0 && (size_t)w < why_len - used)
                used += (size_t)w;
            continue;
        }
        if (sp->num_addrs == CLIENT_SPREAD_MAX) {
            curl_slist_free_all(to);
            sp->num_ignored++;
            continue;
        }
        struct client_spread_addr *a = &sp->addrs[sp->num_addrs++];
        memset(a, 0, sizeof(*a));
        memcpy(a->addr, found[i], sizeof(a->addr));
        snprintf(a->health, sizeof(a->health), "%s", h.body);
        a->connect_to = to;
    }
    return 0;
}

static void spread_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int client_spread_find(struct client_spread *sp, const char *base_url, unsigned want, long wait_ms,
                       long timeout_ms, char *err, size_t err_len)
{
    char port[16], health_url[CLIENT_HTTP_URL_MAX], why[1024];
    memset(sp, 0, sizeof(*sp));
    if (spread_host_port(base_url, sp->host, sizeof(sp->host), port, sizeof(port), err, err_len) <
            0 ||
        client_http_endpoint(base_url, "/health", health_url, sizeof(health_url), err, err_len) <
            0) {
        errno = EINVAL;
        return -1;
    }
    if (spread_is_address(sp->host)) {
        if (want > 1) {
            errno = EINVAL;
            snprintf(err, err_len, "url %s: %s is one address, not a name that leads to %u servers",
                     base_url, sp->host, want);
            return -1;
        }
        return 0;
    }
    long probe_ms = timeout_ms < SPREAD_PROBE_MAX_MS ? timeout_ms : SPREAD_PROBE_MAX_MS;
    uint64_t deadline = client_http_now_us() + (uint64_t)wait_ms * 1000u;
    for (unsigned round = 1;; round++) {
        if (spread_round(sp, sp->host, port, health_url, want, probe_ms, why, sizeof(why), err,
                         err_len) < 0) {
            if (errno == ENOMEM)
                return -1;
            /* No minimum: the caller reached the server already, libcurl's way still works. */
            if (want <= 1) {
                spread_clear(sp);
                return 0;
            }
            /* Not resolvable yet: the replicas may still be starting. */
            if (client_http_now_us() >= deadline)
                return -1;
        } else if (sp->num_addrs >= want || want <= 1) {
            break;
        } else if (client_http_now_us() >= deadline) {
            errno = ETIMEDOUT;
            snprintf(err, err_len,
                     "%s resolves to %u addresses, %u of them answer GET /health 200, not the "
                     "%u wanted, after %u tries in %.1f s%s%s",
                     sp->host, sp->num_found, sp->num_addrs, want, round, (double)wait_ms / 1000.0,
                     why[0] ? ": " : "", why);
            return -1;
        }
        spread_sleep_ms(SPREAD_RETRY_MS);
    }
    /* One address that answers: nothing to spread, libcurl's own way does the same. */
    if (sp->num_addrs < 2)
        spread_clear(sp);
    return 0;
}

int client_spread_pin(struct client_spread *sp, void *curl, uint64_t seq)
{
    if (sp == NULL || sp->num_addrs == 0)
        return -1;
    unsigned i = (unsigned)((seq - 1) % sp->num_addrs);
    curl_easy_setopt((CURL *)curl, CURLOPT_CONNECT_TO,
                     (struct curl_slist *)sp->addrs[i].connect_to);
    sp->addrs[i].num_sent++;
    return (int)i;
}

void client_spread_count(struct client_spread *sp, int i, int acked)
{
    if (sp != NULL && i >= 0 && (unsigned)i < sp->num_addrs && acked)
        sp->addrs[i].num_acked++;
}

void client_spread_release(struct client_spread *sp)
{
    spread_clear(sp);
}
