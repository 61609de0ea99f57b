"""Sign and verify the manifest exactly as mender-artifact 3.9 does.

Checked against mender-artifact's signer.go and by experiment with the real tool:
the signed message is the `manifest` member's bytes; `manifest.sig` holds base64 of
- RSA: PKCS#1 v1.5 over SHA-256;
- ECDSA P-256: raw r||s, 32 bytes each, big-endian, of SHA-256 (a 72-byte DER
  signature is also accepted on verify, as mender-artifact does);
- Ed25519 (newer mender-artifact; not 3.9): the raw 64-byte signature.
Keys load from PEM in PKCS#1, PKCS#8, SEC1 and SubjectPublicKeyInfo forms.
`cryptography` is imported only when signing or verifying.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import warnings
from typing import TYPE_CHECKING, Iterator, Union

from mender_docker.errors import SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

    PrivateKey = Union[RSAPrivateKey, EllipticCurvePrivateKey, Ed25519PrivateKey]
    PublicKey = Union[RSAPublicKey, EllipticCurvePublicKey, Ed25519PublicKey]

KeySource = Union[str, "os.PathLike[str]", bytes]
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_P256_SIZE = 32
MIN_RSA_BITS = 2048


def _pem_bytes(source: KeySource) -> bytes:
    if isinstance(source, bytes):
        return source
    with open(source, "rb") as handle:
        return handle.read(1 << 20)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings while a key loads: `cryptography` deprecates some key kinds (DSA) with
    a warning that would print before our one-line error, which says all there is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _check_key_type(key: object, what: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < MIN_RSA_BITS:
            raise SignatureError(f"{what}: RSA key of {key.key_size} bits; need {MIN_RSA_BITS}+")
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SignatureError(f"{what}: EC curve {key.curve.name} unsupported; need P-256")
        return
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    raise SignatureError(f"{what}: unsupported key type {type(key).__name__}")


def load_private_key(source: KeySource) -> PrivateKey:
    """An RSA (2048+), EC P-256 or Ed25519 private key from a PEM path or PEM bytes."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    pem = _pem_bytes(source)
    try:
        with _quiet():
            key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"not a usable unencrypted PEM private key: {exc}") from None
    _check_key_type(key, "private key")
    return key  # type: ignore[return-value]


def load_public_key(source: KeySource) -> PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo or PKCS#1 RSA); a private key also works."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    pem = _pem_bytes(source)
    try:
        with _quiet():
            key: object = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            with _quiet():
                key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SignatureError("not a PEM public key (or unencrypted private key)") from None
    _check_key_type(key, "public key")
    return key  # type: ignore[return-value]


def sign_manifest(manifest: bytes, key: PrivateKey) -> bytes:
    """The `manifest.sig` content: base64 of the signature, no newline."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(manifest, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.sign(manifest, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        raw = r.to_bytes(_P256_SIZE, "big") + s.to_bytes(_P256_SIZE, "big")
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(manifest)
    else:
        raise SignatureError(f"cannot sign with a {type(key).__name__}")
    return base64.b64encode(raw)


def verify_manifest(manifest: bytes, signature: bytes, key: PublicKey) -> None:
    """Raise SignatureError unless `signature` (base64) signs `manifest` with `key`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

    # Line breaks are skipped anywhere, as Go's base64 decoder does; nothing else is.
    text = signature.replace(b"\r", b"").replace(b"\n", b"")
    if not text:
        raise SignatureError("manifest.sig is empty")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        at = next((i for i, c in enumerate(text) if c not in _BASE64), None)
        raise SignatureError("manifest.sig is not base64" + (
            f" ({chr(text[at])!r} at byte {at})" if at is not None else
            " (bad length or padding)")) from None
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if len(raw) != key.key_size // 8:
                raise SignatureError(f"manifest.sig holds {_signature_kind(raw)}, but the key "
                                     f"is RSA-{key.key_size}: wrong key")
            key.verify(raw, manifest, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if len(raw) == 2 * _P256_SIZE:
                r = int.from_bytes(raw[:_P256_SIZE], "big")
                s = int.from_bytes(raw[_P256_SIZE:], "big")
                der = utils.encode_dss_signature(r, s)
            elif 64 < len(raw) <= 72 and raw[0] == 0x30:
                der = raw
            else:
                raise SignatureError(f"manifest.sig holds {_signature_kind(raw)}, but the key "
                                     "is ECDSA P-256: wrong key")
            key.verify(der, manifest, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            if len(raw) != 64:
                raise SignatureError(f"manifest.sig holds {_signature_kind(raw)}, but the key "
                                     "is Ed25519: wrong key")
            key.verify(raw, manifest)
        else:
            raise SignatureError(f"cannot verify with a {type(key).__name__}")
    except InvalidSignature:
        raise SignatureError("manifest signature does not verify with the given key") from None
    except ValueError as exc:  # malformed DER and the like
        raise SignatureError(f"manifest signature is malformed: {exc}") from None


def _signature_kind(raw: bytes) -> str:
    """What a signature of this length is, for messages."""
    if len(raw) in (256, 384, 512):
        return f"an RSA-{len(raw) * 8} signature"
    if len(raw) == 2 * _P256_SIZE:
        return "an ECDSA P-256 (or Ed25519) signature"
    if 64 < len(raw) <= 72 and raw[0] == 0x30:
        return "a DER-encoded ECDSA signature"
    return f"a signature of {len(raw)} bytes (no known kind)"
