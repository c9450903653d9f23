#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/) from the examples and test
vectors of PROTOCOL.md. Each target's harness reads a leading mode byte and pieces with one
length byte each (see fuzz_support.h); the seeds follow that layout. Idempotent: run it again
after changing it and commit the result."""

import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent

# PROTOCOL.md §12.
CLIENT_HELLO = bytes.fromhex(
    "01015dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22"
    + "04" * 32 + "0000018bcfe56800001a" + b"gateway.example:8443/aegis".hex())
SERVER_HELLO = bytes.fromhex(
    "020150a61409b1ddd0325e9b16b700e719e9772c07000b1bd7786e907c653d20495d"
    + "06" * 32 + "00000070"
    "3e06ee2cd546a0aa88e76af1b0271dba9f5929c3a70a08564f9631108795a3a62af15a13067e1ab7b3a2dd60ed17fd6b"
    "482c0d24d2129a3a12c3c3eec5693ce16a28b9de663c296b63b0c4425ba00a4060d4c756b517812bb5f5056736825cd4"
    "ddb8ea9ce4f2c6b62b700326a12ea0d9")
CLIENT_AUTH = bytes.fromhex(
    "03000000976a43745f14eb784ccea9618652b0fd58c550f26baa9001170b5c79cd578ba18b034eb42621b1c96a0b119c"
    "4d2d804406790560360d35b23f95e1f0c27b5efb8020a1b9d19e76454a2bb2fcc9a99931b812d40056b61618438e22f5"
    "b2059306a0eaad092e9c3bffa7592b1e6c6cb5262b23d5848c4da11cde33ece9da071d35d963c38a3658c3d05a259d47"
    "4c414b62ff71dfbecef2b924")
SERVER_FINISH = bytes.fromhex(
    "040000005190575b122ce69e01c6111a971db313ad0a304a2bc2ae9203e65fc007c8d68c19eaac555a7085de915ab336"
    "9a560cf51b53b65fcd8cab874ab2da25304a07960d62f30352a1b68c2dd375bfae13226acb1b")
SERVER_FINISH_REFUSAL = bytes.fromhex(
    "040000002391505a15258ff672e17768e472db66c3775d269558b17eb1cfec00f69b61c37c018853")
SERVER_PROOF = bytes.fromhex(
    "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    "54255282c0d7ae583341310f3123b21e088d347f22834226f8f47740c8f26f5d"
    "2d2b70098186b826128d8a30d99ecfcb5509245b800e4c4e3fcda8518d2d9403")
CLIENT_PROOF = bytes.fromhex(
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    "06686f7374343200000000000000000000000000000000000000000000000000"
    "00000000000000821cb38f049a202e7fc58421838228e4177f563afb2bc51106"
    "45803e72649e2e982f0c34afa4defbbbab15a479e9493de1e40e155442098f06"
    "58714b33935f00")
ACCEPTANCE = bytes.fromhex(
    "0007070707070707070707070707070707080808080808080808080808080808"
    "0808080808080808080808080808080808000000000000000006686f73743432"
    "01")
SERVER_RECORD = bytes.fromhex("8f49d4075fce2e1c5ae24902dfebe896c7684d97e78e")
BATCH = bytes.fromhex(
    "0100136167656e742e686f737434322e7374617475738a88e3dd7409f195fd52"
    "db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c06686f73743432000109"
    "09090909090909090909090909090900000000000000010000018bcfe5687b00"
    "00018bcfe652db0100000000000000000000000000000000000001000c636f6e"
    "74656e742d747970650000000a746578742f706c61696e000000026f6ba06bb4"
    "ff5b1dd48388493928d182c4ac8461159538372456ab0f58ee76656d7c50ece3"
    "ec674a9853d259d5c206b109097d4038f82f49e4926562d0a066795e06")
MESSAGES_EVENT = bytes.fromhex(  # the local messages event of PROTOCOL.md §12
    "0000018b000000e97b226368616e6e656c223a226167656e742e686f73743432"
    "2e737461747573222c22636f756e74223a322c226576656e74223a226d657373"
    "61676573222c226f726967696e5f66696e6765727072696e74223a2253484132"
    "35363a4e4855506d4c315a2f50795562615261717236544f2b4655704c554a54"
    "68784b76304b475a51587a795834222c226f726967696e5f6964223a22686f73"
    "743432222c226f726967696e5f6b6579223a22696f6a6a3358514a385a583955"
    "747374504c70646373706e436238646c42496238335349416251506231773d22"
    "2c227665726966696564223a747275657d090909090909090909090909090909"
    "0900000000000000010000018bcfe5687b0000018bcfe652db01000000000000"
    "00000000000000000000000001000c636f6e74656e742d747970650000000a74"
    "6578742f706c61696e000000026f6b0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a00"
    "000000000000020000018bcfe5687c0000000000000000020209090909090909"
    "090909090909090909000000000000")
PUBLIC_KEY_BASE64 = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
SECRET_KEY_BASE64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA=="
OTHER_PUBLIC_KEY_BASE64 = "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="  # the server identity of §12


def piece(data: bytes) -> bytes:
    assert len(data) < 256
    return bytes([len(data)]) + data


def text16(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def session_frames() -> dict:
    patterns = [b"backend.host42.>", b"backend.all.>"]
    subscribe_body = struct.pack(">IH", 7, len(patterns)) + b"".join(struct.pack(">H", len(p)) + p for p in patterns)
    return {
        "publish": b"\x01" + struct.pack(">II", 1, len(BATCH)) + BATCH,
        "subscribe": b"\x02" + subscribe_body,
        "unsubscribe": b"\x03" + subscribe_body,
        "deliver_ack": b"\x04" + struct.pack(">Q", 42),
        "puback": b"\x11" + struct.pack(">IQ", 1, 1),
        "suback": b"\x12" + struct.pack(">I", 7),
        "deliver": b"\x13" + struct.pack(">QI", 1, len(BATCH)) + BATCH,
        "error": b"\x14" + struct.pack(">IH", 0, 1) + text16("malformed frame"),
        "goodbye": b"\x15" + struct.pack(">H", 12) + text16("shutting down"),
    }


def local_frame(header: dict, payload: bytes = b"") -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload


LOCAL_REQUESTS = {
    "hello": {"op": "hello", "v": 1, "client": "aegis-send", "id": 1},
    "publish": {"op": "publish", "channel": "agent.host42.anomalies", "priority": "normal", "kind": "event", "id": 2},
    "publish_full": {"op": "publish", "channel": "agent.host42.x", "priority": "critical", "ttl_ms": 5000,
                     "headers": [["content-type", "text/plain"], ["k", "v"]], "kind": "reply",
                     "correlation": "09" * 16, "wait_ack": True, "id": "abc"},
    "publish_header_object": {"op": "publish", "channel": "agent.host42.x", "headers": {"a": "b"}, "id": 3},
    "subscribe": {"op": "subscribe", "patterns": ["backend.host42.>"], "id": 2},
    "status": {"op": "status", "id": 1},
    "stop": {"op": "stop"},
}

LOCAL_RESPONSES = {
    "ok": {"id": 1, "ok": True, "v": 1, "versions": [1], "broker": "aegis-connect 0.1.0", "pid": 4242,
           "state": "connected"},
    "error": {"id": 7, "ok": False, "error": {"reason": "access_denied", "message": "no", "exit": 4}},
    "message_event": {"event": "message", "id": "09" * 16, "channel": "backend.host42.policies",
                      "origin_id": "backend1", "origin_fingerprint": "SHA256:x", "origin_key": PUBLIC_KEY_BASE64,
                      "verified": True, "sequence": 1, "timestamp_ms": 1731000000000, "expires_ms": 1731000060000,
                      "priority": "normal", "kind": "event", "correlation": "00" * 16,
                      "headers": [["content-type", "application/json"]]},
}


def seeds() -> dict:
    frames = session_frames()
    hello = local_frame(LOCAL_REQUESTS["hello"])
    publish = local_frame(LOCAL_REQUESTS["publish"], b"hi")
    subscribe = local_frame(LOCAL_REQUESTS["subscribe"])
    return {
        "handshake_server": {
            "hello": b"\x00" + CLIENT_HELLO,
            "auth_raw": b"\x01" + CLIENT_AUTH,
            "auth_proof": b"\x02" + CLIENT_PROOF,
        },
        "handshake_client": {
            "server_hello": b"\x00" + SERVER_HELLO,
            "alert": b"\x00" + b"\x05" + struct.pack(">H", 6) + text16("not authorized"),
            "finish_raw": b"\x01" + SERVER_FINISH,
            "finish_refusal_raw": b"\x01" + SERVER_FINISH_REFUSAL,
            "finish_acceptance": b"\x02" + ACCEPTANCE,
            "finish_refusal": b"\x02" + b"\x01" + struct.pack(">H", 6) + text16("not authorized"),
            "hello_proof": b"\x03" + SERVER_PROOF,
        },
        "record": {
            "raw": b"\x00" + piece(SERVER_RECORD) + piece(SERVER_RECORD),
            "peer": b"\x01" + piece(b"hello") + piece(b"") + piece(b"world") + piece(b"x" * 40) + piece(b"again"),
            "hand": b"\x02" + piece(b"\x00hello") + piece(b"\x01rekey") + piece(b"\x00after") + piece(b"\x02bad"),
        },
        "envelope": {"batch": BATCH},
        "frame": frames,
        "ipc_codec": {
            "one_byte_chunks": b"\x00" + hello + publish,
            "whole": b"\xff" + hello + subscribe,
            "status": b"\x07" + bytes.fromhex("0000001a000000167b226f70223a22737461747573222c226964223a317d"),
            "bad_json": b"\x03" + local_frame({}).replace(b"{}", b"{x") + hello,
            "messages_event": b"\x05" + MESSAGES_EVENT,
        },
        "ipc_request": {name: json.dumps(value).encode() for name, value in LOCAL_REQUESTS.items()},
        "ipc_response": {name: json.dumps(value).encode() for name, value in LOCAL_RESPONSES.items()},
        "public_key": {
            "line": f"aegis-ed25519 {PUBLIC_KEY_BASE64} user@host\n".encode(),
            "no_comment": f"aegis-ed25519 {PUBLIC_KEY_BASE64}".encode(),
            "spaced_comment": f"  aegis-ed25519 {PUBLIC_KEY_BASE64}  my laptop key  \n".encode(),
        },
        "secret_key": {
            "key": f"aegis-ed25519-secret {SECRET_KEY_BASE64} user@host\n".encode(),
            "public_instead": f"aegis-ed25519 {PUBLIC_KEY_BASE64} user@host\n".encode(),
        },
        "authorized_keys": {
            "file": (
                "# agents\n"
                f"role=agent,id=host42 aegis-ed25519 {PUBLIC_KEY_BASE64} host42@fleet\n"
                "\n"
                f"role=backend,id=backend1,pub=backend.host42.>,sub=agent.*.status aegis-ed25519 {OTHER_PUBLIC_KEY_BASE64}\n"
                f"role=agent,id=host42 aegis-ed25519 {OTHER_PUBLIC_KEY_BASE64} duplicate id\n"
                "role=robot,id=x aegis-ed25519 AAAA\n"
            ).encode(),
        },
        "channel": {
            "exact": piece(b"agent.host42.status") + piece(b"agent.host42.status") + b"agent.host42.status",
            "wildcards": piece(b"agent.>") + piece(b"agent.*.status") + b"agent.host42.status",
            "policy": piece(b"host42") + piece(b"agent.host42.>") + b"agent.host42.metrics",
            "invalid": piece(b"a..b") + piece(b"a.>.b") + b"*",
        },
    }


def main() -> None:
    for target, files in seeds().items():
        directory = HERE / "corpus" / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)


if __name__ == "__main__":
    main()
