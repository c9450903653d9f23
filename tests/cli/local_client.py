"""A local-socket client (PROTOCOL.md §8) for the process tests.

usage: local_client.py publish SOCKET CHANNEL N OUT [--steady] [--fields]
       local_client.py subscribe SOCKET PATTERN N OUT [--batch] [--fields]
       local_client.py pipelined SOCKET CHANNEL N OUT

publish queues N messages "m-<i>" (with --steady at a steady pace, 20 then a 20 ms pause, so
that a process killed in the middle of the stream is killed inside it) and writes to OUT the
payloads the broker reported queued. subscribe writes to OUT every payload it receives, one a
line, until it has N distinct ones and then 2 s more (so duplicates would show), 60 s have
passed or the broker closed the socket; OUT.ready appears once the subscribe is answered.

--fields: publish gives the messages varied fields (priority, TTL, headers, kind reply with a
correlation, payloads that are not text); subscribe writes each message as one JSON line with
every field of the event (the payload in hex), counts distinct message ids, and writes to
OUT.events one line per event frame: its kind and how many messages it held.
--batch: subscribe asks for "messages" events (PROTOCOL.md §8.4), refused unless the broker's
hello offers message_batch.

pipelined writes, in one write and without waiting for any answer (PROTOCOL.md §8.3.1), a hello
and then N pairs of a publish and a status request, reads the 2N + 1 answers (skipping events)
and writes to OUT the id of each answer in the order they came, then whether it was ok.
"""
import base64
import json
import socket
import struct
import sys
import time

mode, path, channel, count, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
steady = "--steady" in sys.argv[6:]
fields = "--fields" in sys.argv[6:]
batch = "--batch" in sys.argv[6:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
buffer = b""


def send(header, payload=b""):
    text = json.dumps(header).encode()
    s.sendall(struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload)


# The limits a client reads the broker's frames with (PROTOCOL.md §8.2, events and responses).
EVENT_HEADER_MAX = 25_266_516
EVENT_FRAME_MAX = 43_092_312


def read(timeout):
    global buffer
    s.settimeout(timeout)
    while True:
        if len(buffer) >= 8:
            total, length = struct.unpack(">II", buffer[:8])
            if total > EVENT_FRAME_MAX or length > EVENT_HEADER_MAX or length > total - 4:
                raise ValueError(f"the broker sent a frame of {total} bytes with a {length}-byte header, "
                                 "over the event limits")
            if len(buffer) >= 4 + total:
                header = json.loads(buffer[8:8 + length])
                payload = buffer[8 + length:4 + total]
                buffer = buffer[4 + total:]
                return header, payload
        chunk = s.recv(1 << 16)
        if not chunk:
            raise EOFError
        buffer += chunk


def varied(i):
    """A publish request and payload whose fields depend on i."""
    request = {"op": "publish", "id": i + 1, "channel": channel,
               "priority": ["critical", "high", "normal", "low"][i % 4]}
    if i % 3 == 0:
        request["ttl_ms"] = 3600000
    if i % 5 == 0:
        request["headers"] = [["content-type", "text/plain"], ["n", str(i)], ["empty", ""]]
    if i % 7 == 0:
        request["kind"] = "reply"
        request["correlation"] = "%032x" % (i + 1)
    payload = b"m-%d" % i if i % 2 == 0 else bytes([0, 255, i % 256]) + b"\n"
    return request, payload


def u64(b):
    return struct.unpack(">Q", b)[0]


def records(header, payload):
    """The messages of a "messages" event, as dicts shaped like a "message" event."""
    out, at = [], 0
    priorities, kinds = ["critical", "high", "normal", "low"], ["event", "request", "reply", "ack", "heartbeat"]
    for _ in range(header["count"]):
        m = {k: header[k] for k in ("channel", "origin_id", "origin_fingerprint", "origin_key", "verified")}
        m["id"] = payload[at:at + 16].hex()
        m["sequence"], m["timestamp_ms"] = u64(payload[at + 16:at + 24]), u64(payload[at + 24:at + 32])
        expires = u64(payload[at + 32:at + 40])
        if expires:
            m["expires_ms"] = expires
        m["priority"], m["kind"] = priorities[payload[at + 40]], kinds[payload[at + 41]]
        if payload[at + 42:at + 58] != bytes(16):
            m["correlation"] = payload[at + 42:at + 58].hex()
        (n,), at = struct.unpack(">H", payload[at + 58:at + 60]), at + 60
        m["headers"] = []
        for _ in range(n):
            (k,) = struct.unpack(">H", payload[at:at + 2])
            key, at = payload[at + 2:at + 2 + k].decode(), at + 2 + k
            (v,) = struct.unpack(">I", payload[at:at + 4])
            m["headers"].append([key, payload[at + 4:at + 4 + v].decode()])
            at += 4 + v
        (p,) = struct.unpack(">I", payload[at:at + 4])
        out.append((m, payload[at + 4:at + 4 + p]))
        at += 4 + p
    if at != len(payload):
        sys.exit("messages event: %d bytes after the last message" % (len(payload) - at))
    return out


def frame(header, payload=b""):
    text = json.dumps(header).encode()
    return struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload


if mode == "pipelined":
    frames = [frame({"op": "hello", "v": 1, "id": 0, "client": "process-test"})]
    for i in range(count):
        frames.append(frame({"op": "publish", "id": 2 * i + 1, "channel": channel}, b"p-%d" % i))
        frames.append(frame({"op": "status", "id": 2 * i + 2}))
    s.sendall(b"".join(frames))
    answers = []
    while len(answers) < 2 * count + 1:
        header, _ = read(30)
        if "event" not in header:
            answers.append("%s %s" % (header.get("id"), "ok" if header.get("ok") else "error"))
    with open(out, "w") as f:
        f.write("".join(a + "\n" for a in answers))
    sys.exit(0)

send({"op": "hello", "v": 1, "id": 0, "client": "process-test"})
hello, _ = read(10)
if batch and "message_batch" not in hello.get("features", []):
    sys.exit("the broker does not offer message_batch: %s" % hello)
if mode == "publish":
    queued = []
    for i in range(count):
        if fields:
            send(*varied(i))
        else:
            send({"op": "publish", "id": i + 1, "channel": channel}, b"m-%d" % i)
        header, _ = read(30)
        if header.get("ok"):
            queued.append(i)
        if steady and i % 20 == 19:
            time.sleep(0.02)
    with open(out, "w") as f:
        f.write("".join("m-%d\n" % i for i in queued))
else:
    request = {"op": "subscribe", "id": 1, "patterns": [channel]}
    if batch:
        request["batch"] = True
    send(request)
    got, distinct, events, deadline, done_at = [], set(), [], time.time() + 60, None
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
            messages = [({k: v for k, v in header.items() if k != "event"}, payload)]
        elif header.get("event") == "messages":
            messages = records(header, payload)
        else:
            continue
        events.append("%s %d" % (header["event"], len(messages)))
        for message, body in messages:
            if fields:
                message["payload"] = body.hex()
                got.append(json.dumps(message, sort_keys=True))
                distinct.add(message["id"])
            else:
                got.append(body.decode())
                distinct.add(body)
        if len(distinct) >= count and done_at is None:
            done_at = time.time() + 2
    with open(out, "w") as f:
        f.write("".join(p + "\n" for p in got))
    if fields:
        with open(out + ".events", "w") as f:
            f.write("".join(e + "\n" for e in events))
