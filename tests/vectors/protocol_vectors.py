#!/usr/bin/env python3
"""PROTOCOL.md §12 recomputed from the text of PROTOCOL.md alone, with PyNaCl (libsodium's
Ed25519, X25519 and ChaCha20-Poly1305) and Python's hashlib (BLAKE2b, SHA-256): the key, handshake,
key schedule, record, envelope and frame vectors and the certificate of §2.1, compared with the hex the document prints.

The vectors were produced by the code under test; this is a second implementation written from
the document, so a vector and its description cannot drift apart unnoticed.

Usage: protocol_vectors.py PROTOCOL.md   (exit 0: all match; 1: a mismatch; 77: no PyNaCl)
"""

import base64
import hashlib
import json
import re
import struct
import sys

try:
    from nacl import bindings
    from nacl.signing import SigningKey
except ImportError:
    print("SKIP: protocol_vectors: PyNaCl is missing (Debian: python3-nacl)")
    sys.exit(77)


# --- §1 primitives ---------------------------------------------------------------------------------

def H(m):
    return hashlib.blake2b(m, digest_size=32).digest()


def KDF(k, label, ctx=b""):
    return hashlib.blake2b(label.encode() + ctx, digest_size=32, key=k).digest()


def nonce(n):
    return bytes(4) + struct.pack(">Q", n)


def AEAD(k, n, ad, pt):
    return bindings.crypto_aead_chacha20poly1305_ietf_encrypt(pt, ad, nonce(n), k)


def X25519(s, p):
    out = bindings.crypto_scalarmult(s, p)
    assert out != bytes(32), "all-zero DH"
    return out


def u8(v):
    return struct.pack(">B", v)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def u8len(b):
    return u8(len(b)) + b


def u16len(b):
    return u16(len(b)) + b


def u32len(b):
    return u32(len(b)) + b


def sign(seed, m):
    return SigningKey(seed).sign(m).signature


def public(seed):
    return bytes(SigningKey(seed).verify_key)


# --- the document's vectors ----------------------------------------------------------------------

def printed_vectors(text):
    """Label -> bytes for every hex block in the fenced code of §12 (a label line, then hex lines)."""
    section = text[text.index("## 12. Test vectors"):]
    vectors = {}
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        label = None
        for line in block.splitlines():
            if re.fullmatch(r"[0-9a-f]+", line):
                vectors[label] = vectors.get(label, b"") + bytes.fromhex(line)
            elif line.strip():
                label = line.strip()
    frames = {}
    for name, value in re.findall(r"^\| ([a-z_]+)[^|]*\| `([0-9a-f]+)` \|$", section, re.M):
        frames.setdefault(name, []).append(bytes.fromhex(value))
    return vectors, frames


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    printed, frames = printed_vectors(text)
    failures = []
    checked = 0

    def expect(label, actual):
        nonlocal checked
        matches = [k for k in printed if k == label or k.startswith(label)]
        if len(matches) != 1:
            failures.append(f"{label}: {len(matches)} blocks in PROTOCOL.md carry this label")
            return
        want = printed[matches[0]]
        checked += 1
        if want != actual:
            failures.append(f"{matches[0]}:\n  PROTOCOL.md {want.hex()}\n  recomputed  {actual.hex()}")

    # Inputs (§12)
    client_seed, server_seed = bytes([1]) * 32, bytes([2]) * 32
    ce_secret, client_random = bytes([3]) * 32, bytes([4]) * 32
    se_secret, server_random = bytes([5]) * 32, bytes([6]) * 32
    timestamp = 1700000000000
    server_name = b"gateway.example:8443/aegis"
    requested_id = b"host42"
    resume_token = bytes(32)

    # Keys
    client_pk, server_pk = public(client_seed), public(server_seed)
    ce_pk = bindings.crypto_scalarmult_base(ce_secret)
    se_pk = bindings.crypto_scalarmult_base(se_secret)
    expect("client identity public key", client_pk)
    expect("server identity public key", server_pk)
    expect("client ephemeral public key", ce_pk)
    expect("server ephemeral public key", se_pk)

    # §2: the key files and the fingerprint of the client identity.
    secret_line = "aegis-ed25519-secret " + base64.b64encode(client_seed + client_pk).decode() + " host42"
    public_line = "aegis-ed25519 " + base64.b64encode(client_pk).decode() + " host42"
    fingerprint = "fingerprint SHA256:" + base64.b64encode(hashlib.sha256(client_pk).digest()).decode().rstrip("=")
    for line in (secret_line, public_line, fingerprint):
        checked += 1
        if line not in text.split("\n"):
            failures.append(f"§2 example: no line '{line}'")

    # §3.1 (1) ClientHello
    m1 = u8(1) + u8(1) + ce_pk + client_random + u64(timestamp) + u16len(server_name)
    expect("(1) ClientHello", m1)

    # §3.2 transcript, §3.3 key schedule
    m2_clear = u8(2) + u8(1) + se_pk + server_random
    absorbed = b"aegis/1 transcript" + u32(len(m1)) + m1 + u32(66) + m2_clear
    th_a = H(absorbed)
    dh = X25519(ce_secret, se_pk)
    assert dh == X25519(se_secret, ce_pk)
    hs = KDF(dh, "aegis/1 handshake", th_a)
    k_hs_s2c = KDF(hs, "aegis/1 hs s2c")
    k_hs_c2s = KDF(hs, "aegis/1 hs c2s")

    # (2) ServerHello
    server_sig = sign(server_seed, b"aegis/1 server signature" + th_a)
    server_proof = server_pk + server_sig
    sealed2 = u32len(AEAD(k_hs_s2c, 0, th_a, server_proof))
    m2 = m2_clear + sealed2
    expect("(2) ServerHello", m2)
    expect("ServerHello proof", server_proof)
    absorbed += u32(len(sealed2)) + sealed2
    th_b = H(absorbed)

    # (3) ClientAuth
    client_sig = sign(client_seed, b"aegis/1 client signature" + th_b + client_pk + u8len(requested_id) + resume_token)
    client_proof = client_pk + u8len(requested_id) + resume_token + client_sig
    m3 = u8(3) + u32len(AEAD(k_hs_c2s, 0, th_b, client_proof))
    expect("(3) ClientAuth", m3)
    expect("ClientAuth proof", client_proof)
    absorbed += u32(len(m3)) + m3
    th_c = H(absorbed)

    # (4) ServerFinish, acceptance and refusal
    acceptance = u8(0) + bytes([7]) * 16 + bytes([8]) * 32 + u64(0) + u8len(b"host42") + u8(1)
    expect("ServerFinish acceptance", acceptance)
    expect("(4) ServerFinish (acceptance)", u8(4) + u32len(AEAD(k_hs_s2c, 1, th_c, acceptance)))
    refusal = u8(1) + u16(6) + u16len(b"not authorized")
    expect("(4') ServerFinish (refusal", u8(4) + u32len(AEAD(k_hs_s2c, 1, th_c, refusal)))

    # §3.1 the extended ClientAuth: options bit 1 offered, accepted options echoed, the software
    # version signed; then the same with the probe flag, answered "probe passed".
    software = b"aegis-connect (Aegis) 0.1.0"
    m1x = m1 + u8(0x02)
    expect("(1x) ClientHello", m1x)
    absorbed_x = b"aegis/1 transcript" + u32(len(m1x)) + m1x + u32(66) + m2_clear
    th_a_x = H(absorbed_x)
    hs_x = KDF(dh, "aegis/1 handshake", th_a_x)
    s2c_x, c2s_x = KDF(hs_x, "aegis/1 hs s2c"), KDF(hs_x, "aegis/1 hs c2s")
    proof_x = server_pk + sign(server_seed, b"aegis/1 server signature" + th_a_x) + u8(0x02)
    expect("extended ServerHello proof", proof_x)
    sealed2_x = u32len(AEAD(s2c_x, 0, th_a_x, proof_x))
    expect("(2x) ServerHello", m2_clear + sealed2_x)
    absorbed_x += u32(len(sealed2_x)) + sealed2_x
    th_b_x = H(absorbed_x)
    for flags, tag in ((0, "x"), (1, "p")):
        signed = (b"aegis/1 client signature" + th_b_x + client_pk + u8len(requested_id) + resume_token + u8(flags)
                  + u8len(software))
        proof3 = (client_pk + u8len(requested_id) + resume_token + u8(flags) + u8len(software)
                  + sign(client_seed, signed))
        expect(f"extended ClientAuth proof, flags {flags}", proof3)
        m3x = u8(3) + u32len(AEAD(c2s_x, 0, th_b_x, proof3))
        expect(f"(3{tag}) ClientAuth", m3x)
        th_c_x = H(absorbed_x + u32(len(m3x)) + m3x)
        if flags == 0:
            expect("(4x) ServerFinish", u8(4) + u32len(AEAD(s2c_x, 1, th_c_x, acceptance)))
        else:
            passed = u8(2) + u8len(b"host42") + u8(1)
            expect("probe passed result", passed)
            expect("(4p) ServerFinish", u8(4) + u32len(AEAD(s2c_x, 1, th_c_x, passed)))

    app = KDF(hs, "aegis/1 traffic", th_c)
    k_c2s = KDF(app, "aegis/1 c2s")
    k_s2c = KDF(app, "aegis/1 s2c")
    for label, value in (("TH_a", th_a), ("TH_b", th_b), ("TH_c", th_c), ("DH", dh), ("hs", hs),
                         ("k_hs_s2c", k_hs_s2c), ("k_hs_c2s", k_hs_c2s), ("app", app),
                         ("k_c2s (client send", k_c2s), ("k_s2c (server send", k_s2c)):
        expect(label, value)
    expect("k_c2s after one key update", KDF(k_c2s, "aegis/1 rekey"))

    # §4 records: u8 flags || payload, sealed with an empty ad
    expect("first client record", AEAD(k_c2s, 0, b"", u8(0) + b"hello"))
    expect("first server record", AEAD(k_s2c, 0, b"", u8(0) + b"hello"))

    # §5 envelope batch
    message = (bytes([9]) * 16 + u64(1) + u64(1700000000123) + u64(1700000060123) + u8(1) + u8(0) + bytes(16)
               + u16(1) + u16len(b"content-type") + u32len(b"text/plain") + u32len(b"ok"))
    encoding = u8(1) + u16len(b"agent.host42.status") + client_pk + u8len(b"host42") + u16(1) + message
    batch_sig = sign(client_seed, b"aegis/1 batch" + encoding)
    expect("signature over", batch_sig)
    expect("wire form", encoding + batch_sig)
    # format 2: the first byte 2, and the signature over the BLAKE2b-256 digest of the encoding
    encoding2 = u8(2) + encoding[1:]
    batch_sig2 = sign(client_seed, b"aegis/1 batch digest" + H(encoding2))
    expect("format 2: H(canonical encoding)", H(encoding2))
    expect("format 2: signature over", batch_sig2)
    expect("format 2: wire form", encoding2 + batch_sig2)

    # §8.4 the local socket's messages event: the §5 message above, then a reply to it
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(client_pk).digest()).decode().rstrip("=")
    shared = {"event": "messages", "count": 2, "channel": "agent.host42.status", "origin_id": "host42",
              "origin_fingerprint": fingerprint, "origin_key": base64.b64encode(client_pk).decode(),
              "verified": True}
    header = json.dumps(shared, sort_keys=True, separators=(",", ":")).encode()
    reply = (bytes([10]) * 16 + u64(2) + u64(1700000000124) + u64(0) + u8(2) + u8(2) + bytes([9]) * 16
             + u16(0) + u32len(b""))
    records = message + reply
    expect("local messages event", u32(4 + len(header) + len(records)) + u32(len(header)) + header + records)

    # §6 session frames
    want_frames = [
        ("goodbye", u8(0x15) + u16(17) + u16len(b"replaced")),
        ("error", u8(0x14) + u32(0) + u16(1) + u16len(b"id 0")),
        ("error", u8(0x14) + u32(7) + u16(18) + u16len(b"no responders on backend.host42.ping")),
        ("error", u8(0x14) + u32(9) + u16(19) + u16len(b"disabled")),
        ("puback", u8(0x11) + u32(7) + u64(1)),
        ("deliver_ack", u8(0x04) + u64(5)),
    ]
    for name, value in want_frames:
        checked += 1
        if value not in frames.get(name, []):
            printed_rows = ", ".join(v.hex() for v in frames.get(name, []))
            failures.append(f"frame {name}: PROTOCOL.md has {printed_rows or 'none'}, recomputed {value.hex()}")

    # §2.1 certificate: the client key certified by a CA of seed 32 x 0x09
    ca_seed = bytes([9]) * 32
    expect("CA public key", public(ca_seed))
    body = (b"aegis/1 certificate" + client_pk + u8(1) + u8len(b"host42") + u64(42) + u64(1700000000)
            + u64(1731536000) + u8len(b"agent.host42.>") + u8len(b"") + public(ca_seed))
    expect("certificate (195 bytes)", body + sign(ca_seed, body))

    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        return 1
    print(f"PASS: protocol_vectors ({checked} vectors of PROTOCOL.md §12 recomputed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
