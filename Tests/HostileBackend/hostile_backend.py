"""Misbehaving HTTP backends on 127.0.0.1 for the health-check prober's tests (issue 13).

Usage: python3 hostile_backend.py MODE [CERT KEY]
Listens on an ephemeral loopback port (over TLS with CERT and KEY when given), prints "PORT <n>"
and serves every connection with MODE:
  silent          accept, read, never answer
  endless-body    200 OK headers, then a body that never ends
  endless-headers 200 OK, then header lines that never end
  huge-header     200 OK with one 1 MiB header line, then a short body
  ok              200 OK with a short body
  host=VALUE      200 OK when the request's Host header is VALUE, else 400
Exits when stdin closes (the test process ended).
"""
import socket
import ssl
import sys
import threading

MODE = sys.argv[1]
CONTEXT = None
if len(sys.argv) > 3:
    CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    CONTEXT.load_cert_chain(sys.argv[2], sys.argv[3])


def serve(conn):
    try:
        conn.settimeout(60)
        if CONTEXT is not None:
            conn = CONTEXT.wrap_socket(conn, server_side=True)
        request = conn.recv(65536)
        if MODE == "silent":
            while conn.recv(65536):
                pass
        elif MODE == "endless-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            chunk = b"x" * 65536
            while True:
                conn.sendall(chunk)
        elif MODE == "endless-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            line = b"X-Filler: " + b"y" * 1000 + b"\r\n"
            block = line * 64
            while True:
                conn.sendall(block)
        elif MODE == "huge-header":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"z" * (1 << 20) + b"\r\nContent-Length: 2\r\n\r\nok")
        elif MODE.startswith("host="):
            head = request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
            hosts = [line.split(b":", 1)[1].strip() for line in head if line.lower().startswith(b"host:")]
            status = b"200 OK" if hosts == [MODE[5:].encode()] else b"400 Bad Request"
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("PORT %d" % listener.getsockname()[1], flush=True)

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()


main()
