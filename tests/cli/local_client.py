"""A local-socket client (PROTOCOL.md §8) for the process tests.

usage: local_client.py publish SOCKET CHANNEL N OUT [--steady]
       local_client.py subscribe SOCKET PATTERN N OUT

publish queues N messages "m-<i>" (with --steady at a steady pace, 20 then a 20 ms pause, so
that a process killed in the middle of the stream is killed inside it) and writes to OUT the
payloads the broker reported queued. subscribe writes to OUT every payload it receives, one a
line, until it has N distinct ones and then 2 s more (so duplicates would show), 60 s have
passed or the broker closed the socket; OUT.ready appears once the subscribe is answered.
"""
import json
import socket
import struct
import sys
import time

mode, path, channel, count, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
steady = "--steady" in sys.argv[6:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
buffer = b""


def send(header, payload=b""):
    text = json.dumps(header).encode()
    s.sendall(struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload)


def read(timeout):
    global buffer
    s.settimeout(timeout)
    while True:
        if len(buffer) >= 8:
            total, length = struct.unpack(">II", buffer[:8])
            if len(buffer) >= 4 + total:
                header = json.loads(buffer[8:8 + length])
                payload = buffer[8 + length:4 + total]
                buffer = buffer[4 + total:]
                return header, payload
        chunk = s.recv(1 << 16)
        if not chunk:
            raise EOFError
        buffer += chunk


send({"op": "hello", "v": 1, "id": 0, "client": "process-test"})
read(10)
if mode == "publish":
    queued = []
    for i in range(count):
        send({"op": "publish", "id": i + 1, "channel": channel}, b"m-%d" % i)
        header, _ = read(30)
        if header.get("ok"):
            queued.append(i)
        if steady and i % 20 == 19:
            time.sleep(0.02)
    with open(out, "w") as f:
        f.write("".join("m-%d\n" % i for i in queued))
else:
    send({"op": "subscribe", "id": 1, "patterns": [channel]})
    got, distinct, deadline, done_at = [], set(), time.time() + 60, None
    while time.time() < deadline and (done_at is None or time.time() < done_at):
        try:
            header, payload = read(0.5)
        except socket.timeout:
            continue
        except EOFError:
            break  # the broker stopped
        if header.get("id") == 1 and "event" not in header:
            if not header.get("ok"):
                sys.exit("subscribe refused: %s" % header)
            with open(out + ".ready", "w"):
                pass
        if header.get("event") == "message":
            got.append(payload.decode())
            distinct.add(payload)
            if len(distinct) >= count and done_at is None:
                done_at = time.time() + 2
    with open(out, "w") as f:
        f.write("".join(p + "\n" for p in got))
