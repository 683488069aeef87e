#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <microhttpd.h>

/// Why this exists: `MHD_start_daemon` is variadic, which Swift cannot call. This fixed-arity
/// wrapper binds a numeric IPv4/IPv6 `host` and starts an epoll daemon with an internal polling
/// thread and a worker pool (`MHD_USE_ITC` so that `MHD_quiesce_daemon` works;
/// `MHD_ALLOW_SUSPEND_RESUME` for deferred responses). TLS is enabled
/// when both PEM strings are given. Returns NULL when `host` is not a numeric address or the
/// daemon cannot start (the reason is printed by libmicrohttpd's error log).
static inline struct MHD_Daemon *CMicroHTTPD_start(
    const char *host, uint16_t port, unsigned int threadPoolSize, unsigned int connectionLimit,
    unsigned int connectionTimeoutSeconds, size_t connectionMemoryLimit,
    MHD_AccessHandlerCallback handler, void *handlerContext,
    MHD_RequestCompletedCallback completed, void *completedContext,
    const char *tlsCertificatePEM, const char *tlsKeyPEM)
{
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    const struct sockaddr *address = NULL;
    unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        address = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        address = (const struct sockaddr *)&v6;
        flags |= MHD_USE_IPv6;
    } else {
        return NULL;
    }
    struct MHD_OptionItem options[8];
    int n = 0;
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)address };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threadPoolSize, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)connectionLimit, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)connectionTimeoutSeconds, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)connectionMemoryLimit, NULL };
    if (tlsCertificatePEM != NULL && tlsKeyPEM != NULL) {
        flags |= MHD_USE_TLS;
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)tlsCertificatePEM };
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)tlsKeyPEM };
    }
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handlerContext,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completedContext,
                            MHD_OPTION_ARRAY, options,
                            MHD_OPTION_END);
}

/// Why this exists: `MHD_get_daemon_info` is variadic. Returns the port the daemon listens on
/// (useful after binding port 0), or 0 when unknown.
static inline uint16_t CMicroHTTPD_boundPort(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

#endif
