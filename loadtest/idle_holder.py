#!/usr/bin/env python3
"""Hold N idle keep-alive connections to a loopback server: each sends one
GET /livez, reads its answer, then stays silent. Prints "holding N" once all
are answered, then holds them for SECONDS (or until killed).
    idle_holder.py PORT [N=10000] [SECONDS=600]"""
import selectors
import socket
import sys
import time

port = int(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
hold = float(sys.argv[3]) if len(sys.argv) > 3 else 600
req = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
sel = selectors.DefaultSelector()
socks, pending = [], 0
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
    pending += 1
    # keep the accept queue short: wait for answers every 500 connections
    while pending > 500 or (i == n - 1 and pending):
        for key, _ in sel.select(timeout=10):
            data = key.fileobj.recv(4096)
            if not data:
                sys.exit("a connection was closed by the server")
            if b"\r\n\r\n" in data:
                sel.unregister(key.fileobj)
                pending -= 1
print("holding", len(socks), flush=True)
time.sleep(hold)
