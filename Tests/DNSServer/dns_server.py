#!/usr/bin/env python3
"""A tiny authoritative DNS server for the end-to-end tests (Python standard library only).

Answers A and AAAA questions over UDP from a zone file that it reads again whenever the file
changes, so that a test rewrites the file to change the answers. Zone file lines:

    NAME TYPE TTL VALUE     e.g.  db.registry.test A 5 192.0.2.20
                                  db.registry.test AAAA 5 2001:db8::20
    # comments and blank lines are ignored

A name with no line answers NXDOMAIN (RCODE 3); a name with lines of the other type only
answers NOERROR with no records (NODATA); any other question type NOERROR with no records.
Never forwards a query anywhere. Usage: dns_server.py --zone FILE [--address 127.0.0.1]
[--port 53]. Prints "READY" on stdout once listening.
"""
import argparse, ipaddress, os, socket, struct, sys

TYPES = {"A": 1, "AAAA": 28}


def load(path, cache={}):
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return {}
    if cache.get("stamp") != stamp:
        records = {}
        with open(path) as zone:
            for line in zone:
                fields = line.split("#", 1)[0].split()
                if len(fields) != 4 or fields[1] not in TYPES:
                    continue
                name, kind, ttl, value = fields[0].lower().rstrip("."), fields[1], int(fields[2]), fields[3]
                data = ipaddress.ip_address(value).packed
                records.setdefault(name, []).append((TYPES[kind], ttl, data))
        cache["stamp"], cache["records"] = stamp, records
    return cache["records"]


def question(packet):
    labels, offset = [], 12
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed question name")
        labels.append(packet[offset:offset + length].decode("ascii").lower())
        offset += length
    qtype, qclass = struct.unpack("!HH", packet[offset:offset + 4])
    return ".".join(labels), qtype, qclass, offset + 4


def answer(packet, records):
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    name, qtype, qclass, end = question(packet)
    found = records.get(name)
    rcode = 3 if found is None else 0
    answers = [(kind, ttl, data) for kind, ttl, data in (found or []) if kind == qtype and qclass == 1]
    # QR, opcode copied, AA, RD copied, RA.
    reply_flags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    out = struct.pack("!HHHHHH", ident, reply_flags, 1, len(answers), 0, 0) + packet[12:end]
    for kind, ttl, data in answers:
        out += struct.pack("!HHHIH", 0xC00C, kind, 1, ttl, len(data)) + data
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zone", required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=53)
    arguments = parser.parse_args()
    family = socket.AF_INET6 if ":" in arguments.address else socket.AF_INET
    server = socket.socket(family, socket.SOCK_DGRAM)
    server.bind((arguments.address, arguments.port))
    print("READY", flush=True)
    while True:
        packet, client = server.recvfrom(4096)
        try:
            reply = answer(packet, load(arguments.zone))
        except (ValueError, IndexError, struct.error, UnicodeDecodeError):
            reply = None
        if reply is not None:
            server.sendto(reply, client)


if __name__ == "__main__":
    sys.exit(main())
