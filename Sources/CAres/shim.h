#ifndef CARES_SHIM_H
#define CARES_SHIM_H

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/// Why these exist: c-ares is callback-driven and its event loop needs poll(2) with socket
/// bit masks (ARES_GETSOCK_READABLE/WRITABLE are macros), which Swift cannot express. The
/// wrapper runs one lookup to completion on the calling thread and copies the answer out.

/// Longest text of one address (INET6_ADDRSTRLEN), the stride of `CAres_resolve`'s buffer.
#define CARES_ADDRESS_LENGTH 46

typedef struct {
    int done;
    int status;
    int count;
    int capacity;
    int ttl;
    char *addresses;
} CAres_Lookup;

static void CAres_callback(void *context, int status, int timeouts, struct ares_addrinfo *result) {
    (void)timeouts;
    CAres_Lookup *lookup = (CAres_Lookup *)context;
    lookup->done = 1;
    lookup->status = status;
    if (status == ARES_SUCCESS && result != NULL) {
        for (struct ares_addrinfo_node *node = result->nodes; node != NULL; node = node->ai_next) {
            if (lookup->count >= lookup->capacity) break;
            char *slot = lookup->addresses + (size_t)lookup->count * CARES_ADDRESS_LENGTH;
            const void *bytes = NULL;
            if (node->ai_family == AF_INET && node->ai_addr != NULL) {
                bytes = &((const struct sockaddr_in *)(const void *)node->ai_addr)->sin_addr;
            } else if (node->ai_family == AF_INET6 && node->ai_addr != NULL) {
                bytes = &((const struct sockaddr_in6 *)(const void *)node->ai_addr)->sin6_addr;
            }
            if (bytes == NULL || inet_ntop(node->ai_family, bytes, slot, CARES_ADDRESS_LENGTH) == NULL) continue;
            lookup->count += 1;
            if (lookup->ttl < 0 || node->ai_ttl < lookup->ttl) lookup->ttl = node->ai_ttl;
        }
    }
    if (result != NULL) ares_freeaddrinfo(result);
}

static pthread_once_t CAres_initialized = PTHREAD_ONCE_INIT;
static int CAres_initStatus = ARES_SUCCESS;
static void CAres_initialize(void) { CAres_initStatus = ares_library_init(ARES_LIB_INIT_ALL); }

static inline long CAres_nowMilliseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/// Resolves `name` to its A and AAAA addresses (ares_getaddrinfo, AF_UNSPEC, unsorted) with a
/// new channel, so that /etc/resolv.conf is read for every lookup. Each query to a server waits
/// `timeoutMilliseconds`, tried `tries` times; the whole lookup is cancelled after
/// `deadlineMilliseconds`. Writes up to `capacity` NUL-terminated addresses, CARES_ADDRESS_LENGTH
/// bytes apart, into `addresses`, their number into `count` and the smallest TTL into `ttl`
/// (-1: none). Returns the ares status (ARES_SUCCESS, ARES_ENOTFOUND, ARES_ENODATA, ...).
static inline int CAres_resolve(
    const char *name, int timeoutMilliseconds, int tries, int deadlineMilliseconds, char *addresses, int capacity, int *count, int *ttl) {
    *count = 0;
    *ttl = -1;
    pthread_once(&CAres_initialized, CAres_initialize);
    if (CAres_initStatus != ARES_SUCCESS) return CAres_initStatus;
    ares_channel channel;
    struct ares_options options;
    memset(&options, 0, sizeof options);
    options.timeout = timeoutMilliseconds;
    options.tries = tries;
    int status = ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status != ARES_SUCCESS) return status;
    CAres_Lookup lookup = {0, ARES_ETIMEOUT, 0, capacity, -1, addresses};
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(channel, name, NULL, &hints, CAres_callback, &lookup);
    long deadline = CAres_nowMilliseconds() + deadlineMilliseconds;
    while (!lookup.done) {
        long remaining = deadline - CAres_nowMilliseconds();
        if (remaining <= 0) {
            ares_cancel(channel);  // calls back with ARES_ECANCELLED
            lookup.status = ARES_ETIMEOUT;
            lookup.count = 0;
            lookup.ttl = -1;
            break;
        }
        ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
        struct pollfd fds[ARES_GETSOCK_MAXNUM];
        int n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short events = 0;
            if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
            if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
            if (events == 0) continue;
            fds[n].fd = sockets[i];
            fds[n].events = events;
            fds[n].revents = 0;
            n++;
        }
        struct timeval limit;
        struct timeval *next = ares_timeout(channel, NULL, &limit);
        long wait = remaining;
        if (next != NULL) {
            long until = (long)next->tv_sec * 1000 + next->tv_usec / 1000;
            if (until < wait) wait = until;
        }
        int ready = poll(fds, (nfds_t)n, (int)wait);
        if (ready <= 0) {
            ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
            continue;
        }
        for (int i = 0; i < n && !lookup.done; i++) {
            ares_socket_t readable = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
            ares_socket_t writable = (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
            if (readable != ARES_SOCKET_BAD || writable != ARES_SOCKET_BAD) ares_process_fd(channel, readable, writable);
        }
    }
    ares_destroy(channel);
    *count = lookup.count;
    *ttl = lookup.ttl;
    return lookup.status;
}

#endif
