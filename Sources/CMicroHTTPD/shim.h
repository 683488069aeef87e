#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H

#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <microhttpd.h>

/// Receives one message of libmicrohttpd, formatted: `length` bytes at `message` (NUL-terminated),
/// at most `CMICROHTTPD_MESSAGE_BYTES - 1`; `truncated` is 1 when the message was longer.
typedef void (*CMicroHTTPD_MessageHandler)(void *context, const char *message, size_t length, int truncated);

/// Where libmicrohttpd's messages go (`MHD_OPTION_EXTERNAL_LOGGER`'s closure); must outlive the daemon.
struct CMicroHTTPD_Logger {
    CMicroHTTPD_MessageHandler handler;
    void *context;
};

#define CMICROHTTPD_MESSAGE_BYTES 512

/// Why this exists: libmicrohttpd's external logger receives a format and a `va_list`, which Swift
/// cannot format. This formats the message into a bounded buffer (on the stack: messages come
/// from any thread) and hands it to the `CMicroHTTPD_Logger` given as `cls`.
static inline void CMicroHTTPD_formatMessage(void *cls, const char *format, va_list arguments)
{
    const struct CMicroHTTPD_Logger *logger = (const struct CMicroHTTPD_Logger *)cls;
    char buffer[CMICROHTTPD_MESSAGE_BYTES];
    if (logger == NULL || logger->handler == NULL || format == NULL) return;
    int written = vsnprintf(buffer, sizeof buffer, format, arguments);
    if (written < 0) return;
    size_t length = (size_t)written < sizeof buffer ? (size_t)written : sizeof buffer - 1;
    logger->handler(logger->context, buffer, length, (size_t)written >= sizeof buffer);
}

/// Transport settings passed to `CMicroHTTPD_start` (one struct instead of a long argument list).
struct CMicroHTTPD_Settings {
    const char *host;
    uint16_t port;
    unsigned int threadPoolSize;
    /// libmicrohttpd's hard connection limit (the server's own limit plus a reserve, see HTTPServer).
    unsigned int connectionLimit;
    /// libmicrohttpd's hard per-address limit; 0: none.
    unsigned int perAddressConnectionLimit;
    unsigned int connectionTimeoutSeconds;
    size_t connectionMemoryLimit;
    MHD_AccessHandlerCallback handler;
    MHD_RequestCompletedCallback completed;
    MHD_NotifyConnectionCallback notifyConnection;
    /// Called with the raw request target as received (before percent-decoding and before the
    /// query is split off); its result becomes the request's `con_cls`.
    void *(*uriLog)(void *cls, const char *uri, struct MHD_Connection *connection);
    void *context;
    /// Receives libmicrohttpd's messages instead of its standard error; NULL keeps the default.
    const struct CMicroHTTPD_Logger *logger;
    const char *tlsCertificatePEM;
    const char *tlsKeyPEM;
};

/// Why this exists: `MHD_start_daemon` is variadic, which Swift cannot call. This fixed-arity
/// wrapper binds a numeric IPv4/IPv6 `host` and starts an epoll daemon with an internal polling
/// thread and a worker pool (`MHD_USE_ITC` so that `MHD_quiesce_daemon` works;
/// `MHD_ALLOW_SUSPEND_RESUME` for deferred responses). TLS is enabled
/// when both PEM strings are given. Returns NULL when `host` is not a numeric address or the
/// daemon cannot start (the reason is printed by libmicrohttpd's error log).
///
/// `MHD_OPTION_STRICT_FOR_CLIENT` is set to 0 on purpose: in libmicrohttpd 0.9.75 level 1 only adds
/// a missing-`Host` check, answered with the status line written twice (the error response is
/// queued while parsing headers and built again afterwards), and refuses a space in the target by
/// closing the connection without any answer. HTTPServer makes both checks itself and answers them
/// properly; level -1 would relax parsing further.
static inline struct MHD_Daemon *CMicroHTTPD_start(const struct CMicroHTTPD_Settings *settings)
{
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    const struct sockaddr *address = NULL;
    unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    if (inet_pton(AF_INET, settings->host, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(settings->port);
        address = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, settings->host, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(settings->port);
        address = (const struct sockaddr *)&v6;
        flags |= MHD_USE_IPv6;
    } else {
        return NULL;
    }
    struct MHD_OptionItem options[16];
    int n = 0;
    if (settings->logger != NULL) {
        // First, so that the messages about the following options go there too.
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)CMicroHTTPD_formatMessage, (void *)settings->logger };
    }
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)address };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)settings->threadPoolSize, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)settings->connectionLimit, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)settings->perAddressConnectionLimit, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)settings->connectionTimeoutSeconds, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)settings->connectionMemoryLimit, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_STRICT_FOR_CLIENT, 0, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)settings->completed, settings->context };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)settings->notifyConnection, settings->context };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)settings->uriLog, settings->context };
    if (settings->tlsCertificatePEM != NULL && settings->tlsKeyPEM != NULL) {
        flags |= MHD_USE_TLS;
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)settings->tlsCertificatePEM };
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)settings->tlsKeyPEM };
    }
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    return MHD_start_daemon(flags, settings->port, NULL, NULL, settings->handler, settings->context,
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

/// Why this exists: `MHD_get_connection_info` is variadic. The connection's socket context slot
/// (set through `MHD_OPTION_NOTIFY_CONNECTION`), or NULL.
static inline void *CMicroHTTPD_socketContext(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}

/// The connection's socket, or -1.
static inline int CMicroHTTPD_socket(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/// Bytes of the request line and header section as received (terminators included), or 0 when
/// not known yet. libmicrohttpd parses them in place: the section starts at the `method` pointer
/// the access handler receives.
static inline size_t CMicroHTTPD_headerSize(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    return info == NULL ? 0 : info->header_size;
}

/// Why this exists: `ioctl` is variadic. Bytes received on `socket` that the server has not read
/// yet, or -1 when unknown.
static inline int CMicroHTTPD_unreadBytes(int socket)
{
    int count = 0;
    return ioctl(socket, FIONREAD, &count) == 0 ? count : -1;
}

/// Bytes written to `socket` that the peer has not acknowledged yet (still in the kernel's send
/// queue), or -1 when unknown.
static inline int CMicroHTTPD_unsentBytes(int socket)
{
    int count = 0;
    return ioctl(socket, TIOCOUTQ, &count) == 0 ? count : -1;
}

/// Whether the peer of `socket` has closed its end (an orderly shutdown read as end of stream,
/// or a reset), without consuming any byte.
static inline int CMicroHTTPD_peerClosed(int socket)
{
    char byte;
    ssize_t count = recv(socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/// The client's address as text (numeric IPv4 or IPv6) into `buffer`; empty when unknown.
static inline void CMicroHTTPD_clientAddress(struct MHD_Connection *connection, char *buffer, size_t size)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buffer[0] = 0;
    if (info == NULL || info->client_addr == NULL) return;
    const struct sockaddr *address = info->client_addr;
    if (address->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)address)->sin_addr, buffer, (socklen_t)size);
    } else if (address->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)address)->sin6_addr, buffer, (socklen_t)size);
    }
}

#endif
