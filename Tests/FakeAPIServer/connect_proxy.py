#!/usr/bin/env python3
"""A loopback proxy for the test suite that records what goes through it.

HTTP CONNECT (the way kubectl and libcurl tunnel HTTPS through an http:// proxy) and SOCKS5
(no authentication, CONNECT only, IPv4 or domain addresses). Every tunnel target, as the client
asked for it ("host:port"), is appended to --log, one line each; every host name is then
connected to on 127.0.0.1, so that a server URL like https://kube.test:PORT reaches the loopback
fake API server only through the proxy. With --refuse, every CONNECT is answered 403.

Usage: connect_proxy.py --log FILE [--refuse]
Prints "PORT <n>" on stdout once listening on 127.0.0.1.
"""
import argparse, socket, struct, sys, threading

ARGS = None
LOCK = threading.Lock()


def record(target):
    with LOCK, open(ARGS.log, "a") as log:
        log.write(target + "\n")


def pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def tunnel(client, port):
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        upstream.settimeout(None)
    except OSError:
        return None
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    return upstream


def read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def socks5(client):
    methods = read_exact(client, 1)[0]
    read_exact(client, methods)
    client.sendall(b"\x05\x00")
    version, command, _, kind = read_exact(client, 4)
    if kind == 1:
        host = socket.inet_ntoa(read_exact(client, 4))
    elif kind == 3:
        host = read_exact(client, read_exact(client, 1)[0]).decode()
    else:
        client.sendall(b"\x05\x08\x00\x01" + b"\x00" * 6)
        return
    port = struct.unpack("!H", read_exact(client, 2))[0]
    record("%s:%d" % (host, port))
    if command != 1:
        client.sendall(b"\x05\x07\x00\x01" + b"\x00" * 6)
        return
    upstream = None if ARGS.refuse else tunnel(client, port)
    if upstream is None:
        client.sendall(b"\x05\x02\x00\x01" + b"\x00" * 6)
        return
    client.sendall(b"\x05\x00\x00\x01" + b"\x00" * 6)
    pipe(client, upstream)


def handle(client):
    try:
        first = client.recv(1, socket.MSG_PEEK)
        if first == b"\x05":
            read_exact(client, 1)
            return socks5(client)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        request = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = request.split(" ", 2)
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        record(target)
        if ARGS.refuse:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        port = int(target.rsplit(":", 1)[1])
        upstream = tunnel(client, port)
        if upstream is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipe(client, upstream)
    except (OSError, ValueError, IndexError):
        pass
    finally:
        client.close()


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--refuse", action="store_true")
    ARGS = parser.parse_args()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    print("PORT %d" % server.getsockname()[1], flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
