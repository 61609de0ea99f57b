"""Key loading in every common PEM form; signatures in mender-artifact's encoding."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from mender_docker.artifact import (
    SignatureError,
    load_private_key,
    load_public_key,
    read_artifact,
    sign_manifest,
    verify_manifest,
)
from tests.artifact.helpers import mender_artifact, openssl, write_sample

MESSAGE = b"0" * 64 + b"  version\n"


@pytest.mark.parametrize("private,public", [
    ("rsa", "rsa_pub"), ("rsa_pkcs8", "rsa_pub"), ("rsa", "rsa_pub_pkcs1"),
    ("ec", "ec_pub"), ("ec_pkcs8", "ec_pub"), ("ed", "ed_pub"),
    ("rsa", "rsa"), ("ec", "ec_pkcs8")])  # a private key also serves to verify
def test_every_pem_form_signs_and_verifies(keys: Dict[str, Path], private: str,
                                           public: str) -> None:
    signature = sign_manifest(MESSAGE, load_private_key(keys[private]))
    verify_manifest(MESSAGE, signature, load_public_key(keys[public]))
    verify_manifest(MESSAGE, signature, load_public_key(keys[public].read_bytes()))
    with pytest.raises(SignatureError):
        verify_manifest(MESSAGE + b"x", signature, load_public_key(keys[public]))


def test_signature_encodings(keys: Dict[str, Path]) -> None:
    """RSA-2048: 256 raw bytes; ECDSA P-256: 64 bytes r||s; both base64 without newline."""
    rsa = sign_manifest(MESSAGE, load_private_key(keys["rsa"]))
    ec = sign_manifest(MESSAGE, load_private_key(keys["ec"]))
    assert len(base64.b64decode(rsa, validate=True)) == 256
    assert len(base64.b64decode(ec, validate=True)) == 64
    assert b"\n" not in rsa + ec


def test_der_ecdsa_signature_accepted_on_verify(keys: Dict[str, Path]) -> None:
    """mender-artifact accepts a DER ECDSA signature too (e.g. from KMS signers)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = load_private_key(keys["ec"])
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    verify_manifest(MESSAGE, base64.b64encode(der), load_public_key(keys["ec_pub"]))


@pytest.mark.real
@pytest.mark.parametrize("form", ["rsa_pkcs8", "ec_pkcs8"])
def test_reference_tool_verifies_signatures_made_with_pkcs8_keys(
    tmp_path: Path, keys: Dict[str, Path], form: str
) -> None:
    path = write_sample(tmp_path / "a.mender", signer=load_private_key(keys[form]))
    public = keys["rsa_pub" if form.startswith("rsa") else "ec_pub"]
    assert "validated successfully" in mender_artifact("validate", "-k", str(public),
                                                       str(path)).stdout


def test_ed25519_round_trip(tmp_path: Path, keys: Dict[str, Path]) -> None:
    path = write_sample(tmp_path / "a.mender", signer=load_private_key(keys["ed"]))
    assert read_artifact(path, verify_key=load_public_key(keys["ed_pub"])).signature_verified
    with pytest.raises(SignatureError):
        read_artifact(path, verify_key=load_public_key(keys["ec_pub"]))


def test_unusable_keys_are_refused(tmp_path: Path, keys: Dict[str, Path]) -> None:
    small = tmp_path / "small.pem"
    openssl("genrsa", "-traditional", "-out", str(small), "1024")
    encrypted = tmp_path / "enc.pem"
    openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-aes256", "-pass", "pass:secret", "-out", str(encrypted))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SignatureError, match="1024 bits"):
        load_private_key(small)
    with pytest.raises(SignatureError, match="secp384r1"):
        load_private_key(keys["ec384"])
    with pytest.raises(SignatureError, match="secp384r1"):
        load_public_key(keys["ec384"])
    with pytest.raises(SignatureError):
        load_private_key(encrypted)
    with pytest.raises(SignatureError):
        load_private_key(garbage)
    with pytest.raises(SignatureError):
        load_public_key(garbage)
    with pytest.raises(SignatureError):
        load_private_key(keys["ec_pub"])  # a public key cannot sign
    with pytest.raises(FileNotFoundError):
        load_private_key(tmp_path / "missing.pem")


def test_a_dsa_key_is_refused_in_one_line_without_warnings(
        tmp_path: Path, keys: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """`cryptography` may warn that a key kind (DSA) is deprecated: the user sees our one
    line only. The loader is made to warn here, whatever this cryptography does."""
    import warnings

    from cryptography.hazmat.primitives import serialization
    from cryptography.utils import CryptographyDeprecationWarning

    private, public = tmp_path / "dsa.pem", tmp_path / "dsa_pub.pem"
    openssl("dsaparam", "-genkey", "-out", str(private), "2048")
    openssl("dsa", "-in", str(private), "-pubout", "-out", str(public))
    for name in ("load_pem_public_key", "load_pem_private_key"):
        real = getattr(serialization, name)

        def warning_first(*args: Any, _real: Any = real, **kw: Any) -> Any:
            warnings.warn("DSA is deprecated", CryptographyDeprecationWarning, stacklevel=2)
            return _real(*args, **kw)

        monkeypatch.setattr(serialization, name, warning_first)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for load, path in ((load_public_key, public), (load_public_key, private),
                           (load_private_key, private)):
            with pytest.raises(SignatureError, match="unsupported key type DSA"):
                load(path)
        load_public_key(keys["rsa_pub"])
    assert not seen, [str(w.message) for w in seen]
    artifact = write_sample(tmp_path / "a.mender")
    result = subprocess.run([sys.executable, "-W", "always", "-m", "mender_docker.cli.main",
                             "validate", "-k", str(public), str(artifact)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "mender-docker validate: error: public key: unsupported key type DSAPublicKey"]
