"""Helpers for the artifact tests: keys made by the real openssl, artifacts taken apart
and put back together (to craft bad ones), and the reference tool."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from mender_docker.artifact import ArtifactSpec, PayloadFile, write_artifact
from tests.realstack import require, run

Member = Tuple[str, bytes]


def mender_artifact(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    require("mender-artifact")
    return run(["mender-artifact", *args], check=check)


def openssl(*args: str) -> None:
    require("openssl")
    run(["openssl", *args])


def make_keys(directory: Path) -> Dict[str, Path]:
    """Key files in the forms mender-artifact 3.9 loads, plus the other common PEM forms."""
    k = {name: directory / f"{name}.pem" for name in (
        "rsa", "rsa_pub", "rsa_pkcs8", "rsa_pub_pkcs1", "ec", "ec_pub", "ec_pkcs8",
        "rsa2", "rsa2_pub", "ec2_pub", "ec2", "ed", "ed_pub", "ec384")}
    openssl("genrsa", "-traditional", "-out", str(k["rsa"]), "2048")
    openssl("rsa", "-in", str(k["rsa"]), "-pubout", "-out", str(k["rsa_pub"]))
    openssl("rsa", "-in", str(k["rsa"]), "-RSAPublicKey_out", "-out", str(k["rsa_pub_pkcs1"]))
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(k["rsa"]), "-out", str(k["rsa_pkcs8"]))
    openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(k["ec"]))
    openssl("ec", "-in", str(k["ec"]), "-pubout", "-out", str(k["ec_pub"]))
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(k["ec"]), "-out", str(k["ec_pkcs8"]))
    openssl("genrsa", "-traditional", "-out", str(k["rsa2"]), "2048")
    openssl("rsa", "-in", str(k["rsa2"]), "-pubout", "-out", str(k["rsa2_pub"]))
    openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(k["ec2"]))
    openssl("ec", "-in", str(k["ec2"]), "-pubout", "-out", str(k["ec2_pub"]))
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(k["ed"]))
    openssl("pkey", "-in", str(k["ed"]), "-pubout", "-out", str(k["ed_pub"]))
    openssl("ecparam", "-genkey", "-name", "secp384r1", "-noout", "-out", str(k["ec384"]))
    return k


def sample_spec(name: str = "sample-1", meta: Optional[dict] = None,  # type: ignore[type-arg]
                scripts: Sequence[Tuple[str, bytes]] = ()) -> ArtifactSpec:
    return ArtifactSpec(
        artifact_name=name, device_types=["dev1", "dev2"], payload_type="docker",
        artifact_group="group-a", artifact_depends={"artifact_name": ["previous"]},
        provides={"rootfs-image.docker.version": name, "extra.key": "b"},
        depends={"needs.thing": "yes", "needs.list": ["a", "b"]},
        clears_provides=["rootfs-image.docker.*"],
        meta_data=meta if meta is not None else {"containers": [], "run_args": "-p 80:80",
                                                 "sizes": [1, 2.5]},
        scripts=list(scripts))


def write_sample(path: Path, files: Sequence[Tuple[str, bytes]] = (("a.bin", b"A" * 3000),),
                 compression: str = "gzip", signer: object = None, **kw: object) -> Path:
    payloads = [PayloadFile.from_bytes(n, d) for n, d in files]
    write_artifact(path, sample_spec(**kw), files=payloads,  # type: ignore[arg-type]
                   compression=compression, signer=signer)
    return path


def members(path: Path) -> List[Member]:
    """The outer tar's members, in order."""
    with tarfile.open(path) as tar:
        out = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            assert handle is not None
            out.append((info.name, handle.read()))
        return out


def tar_bytes(items: Sequence[Member], kinds: Optional[Dict[str, bytes]] = None,
              link: str = "version") -> bytes:
    """A tar of `items`; `kinds` maps a name to a tar type (symlink, device...)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            kind = (kinds or {}).get(name)
            if kind is not None:
                info.type = kind
                info.size = 0
                info.linkname = link
                tar.addfile(info)
            else:
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()
