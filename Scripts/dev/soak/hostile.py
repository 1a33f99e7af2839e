#!/usr/bin/env python3
"""Hostile clients of a shared `referee serve --socket` for the soak test (HardeningSoakTests).

Runs four attackers at once for DURATION seconds against SOCKET, as whatever user starts it (the test
starts it as `nobody`, so its connection flood meets the per-user limit, not the well-behaved users):
  flood     holds as many idle connections as the server admits (and keeps asking for more);
  partial   sends request lines a byte at a time, and lines of megabytes that never end;
  numbers   extreme and subnormal numbers, NUL strings, huge keys, malformed JSON;
  patterns  pathological targeting for the conflict search and a backtracking regex for assign.
Prints one JSON line of counts at the end. Standard library only.
"""
import json, socket, sys, threading, time, random

path, duration = sys.argv[1], float(sys.argv[2])
stop_at = time.time() + duration
counts = {"flood_connections": 0, "flood_refused": 0, "partial": 0, "numbers": 0, "patterns": 0, "errors": 0}
lock = threading.Lock()

def bump(k, n=1):
    with lock:
        counts[k] += n

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s

def call(s, f, line):
    s.sendall(line.encode() + b"\n")
    return f.readline()

def flood():
    import select
    held = []
    while time.time() < stop_at:
        try:
            s = connect()
            s.setblocking(False)
            held.append(s); bump("flood_connections")
        except OSError:
            bump("errors"); time.sleep(0.05)
        if len(held) % 50 == 0 or len(held) > 400:
            # Connections the server refused say so and are closed: drop them and ask again.
            readable, _, _ = select.select(held, [], [], 0.05)
            for r in readable:
                try:
                    data = r.recv(4096)
                except OSError:
                    data = b""
                if b"server_busy" in data:
                    bump("flood_refused")
                held.remove(r); r.close()
            if len(held) > 400:
                held.pop(0).close()
    for s in held:
        s.close()

def partial():
    while time.time() < stop_at:
        try:
            s = connect()
            if random.random() < 0.5:
                s.sendall(b'{"jsonrpc":"2.0","id":1,')
                for _ in range(20):
                    if time.time() >= stop_at: break
                    s.sendall(b" "); time.sleep(0.1)
            else:
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"server.info","params":{"x":"' + b"y" * (3 << 20))
                time.sleep(0.5)
            s.close(); bump("partial")
        except OSError:
            bump("errors"); time.sleep(0.05)

extremes = ["0", "-0", "5e-324", "1e-300", "1e300", "1.7976931348623157e308", "9007199254740993", "123456789012345678901234567890"]
class Connection:
    """One line-oriented connection that reconnects when the server closes it (counted as an error)."""
    def __init__(self):
        self.s = self.f = None
        self.reconnect()

    def reconnect(self):
        try:
            self.s = connect(); self.f = self.s.makefile("r")
        except OSError:
            bump("errors"); self.s = self.f = None; time.sleep(0.05)

    def call(self, line, counter):
        if self.s is None:
            self.reconnect(); return
        try:
            if call(self.s, self.f, line):
                bump(counter)
            else:
                bump("errors"); self.reconnect()
        except OSError:
            bump("errors"); self.reconnect()


def numbers():
    c = Connection()
    i = 0
    while time.time() < stop_at:
        x = random.choice(extremes)
        lines = [
            '{"jsonrpc":"2.0","id":%d,"method":"stats.sample_size","params":{"metric":"binomial","baseline":{"rate":0.1},"mde":{"absolute":%s},"ratio":%s}}' % (i, x, x),
            '{"jsonrpc":"2.0","id":%d,"method":"stats.chance_to_beat","params":{"control":{"n":%s,"successes":1},"treatment":{"n":1e15,"successes":5e14}}}' % (i, x),
            '{"jsonrpc":"2.0","id":%d,"method":"experiment.get","params":{"key":"checkout-green-button\\u0000junk"}}' % i,
            '{"jsonrpc":"2.0","id":%d,"method":"session.act_for","params":{"actor":"root\\u0000"}}' % i,
            '{"jsonrpc":"2.0","id":%d,"method":"results.record","params":{"key":"soak-0","metric":"checkout_conversion","variant":"control","stats":{"n":%s,"successes":1}}}' % (i, x),
            '{"jsonrpc":"2.0","id":%d,"method":"experiment.update","params":{"key":"%s","version":1,"changes":{}}}' % (i, "k" * 100000),
            '{"jsonrpc":"2.0","id":%d,"method":' % i,
            '[' + ','.join('{"jsonrpc":"2.0","id":%d,"method":"stats.srm","params":{"observed":[%s,1],"weights":[1,1]}}' % (j, x) for j in range(50)) + ']',
        ]
        c.call(random.choice(lines), "numbers")
        i += 1

def pigeonhole(pigeons=7, holes=6):
    clauses = [{"$or": [{"p%dh%d" % (i, h): True} for h in range(holes)]} for i in range(pigeons)]
    for h in range(holes):
        for i in range(pigeons):
            for k in range(i + 1, pigeons):
                clauses.append({"$not": {"p%dh%d" % (i, h): True, "p%dh%d" % (k, h): True}})
    return {"$and": clauses}

def patterns():
    doc = json.load(open(sys.argv[3]))
    doc["key"] = "hostile"; doc["layer"] = "hostile-layer"; doc["targeting"] = pigeonhole()
    c = Connection()
    i = 0
    while time.time() < stop_at:
        if i % 2 == 0:
            line = json.dumps({"jsonrpc": "2.0", "id": i, "method": "experiment.check", "params": {"experiment": doc}})
        else:
            line = json.dumps({"jsonrpc": "2.0", "id": i, "method": "assign", "params": {"unit": "u%d" % i, "layer": "checkout",
                               "attributes": {"email": "a" * 5000 + "!", "country": "US", "platform": "ios"}}})
        c.call(line, "patterns")
        i += 1

threads = [threading.Thread(target=t) for t in (flood, partial, numbers, patterns)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(counts))
