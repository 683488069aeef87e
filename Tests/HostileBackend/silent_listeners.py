"""Many silent listeners on 127.0.0.1 for the health checker's capacity tests (issue 13).

Usage: python3 silent_listeners.py MODE COUNT
Opens COUNT listeners on ephemeral loopback ports, prints "PORTS <p1> <p2> ..." and keeps them
until stdin closes (the test process ended). MODE:
  silent-http   backlog 4096, never accepts: the kernel completes each connection and takes the
                request, nobody ever answers (an HTTP backend that hangs)
  full-backlog  backlog 0, filled by one connection of this process: further connects are
                never answered (SYNs dropped, as for a host gone from the network)
"""
import socket
import sys

MODE = sys.argv[1]
COUNT = int(sys.argv[2])
listeners = []
fillers = []
for _ in range(COUNT):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096 if MODE == "silent-http" else 0)
    listeners.append(listener)
    if MODE == "full-backlog":
        filler = socket.socket()
        filler.connect(listener.getsockname())
        fillers.append(filler)
print("PORTS " + " ".join(str(s.getsockname()[1]) for s in listeners), flush=True)
sys.stdin.read()
