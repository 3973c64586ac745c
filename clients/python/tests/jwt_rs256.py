"""Sign an end user's JWT with RS256 in plain Python (the test key is a PKCS#8 RSA PEM), so the
tests need no crypto package: PKCS#1 v1.5 over SHA-256 is a modular exponentiation."""

from __future__ import annotations

import base64
import hashlib
import json

# DER of the SHA-256 DigestInfo prefix (RFC 8017, section 9.2, note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _der(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``at``."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[at : at + n], "big")
        at += n
    return tag, at, at + length


def _rsa_private_key(pem: str) -> tuple[int, int]:
    """(n, d) of a PKCS#8 ``BEGIN PRIVATE KEY`` RSA key."""
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    der = base64.b64decode(body)
    _, at, _ = _der(der, 0)  # PrivateKeyInfo
    _, _, end = _der(der, at)  # version
    _, _, end = _der(der, end)  # algorithm
    tag, at, _ = _der(der, end)  # privateKey OCTET STRING
    assert tag == 0x04, "not a PKCS#8 private key"
    _, at, _ = _der(der, at)  # RSAPrivateKey
    ints = []
    for _ in range(4):  # version, n, e, d
        tag, start, end = _der(der, at)
        assert tag == 0x02
        ints.append(int.from_bytes(der[start:end], "big"))
        at = end
    return ints[1], ints[3]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict, pem: str) -> str:
    n, d = _rsa_private_key(pem)
    size = (n.bit_length() + 7) // 8
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    digest = _SHA256_PREFIX + hashlib.sha256(signing_input).digest()
    padded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    signature = pow(int.from_bytes(padded, "big"), d, n).to_bytes(size, "big")
    return f"{header}.{payload}.{_b64(signature)}"
