"""An interop corpus: artifacts written by mender-artifact 3.9 and 4.0 (and by us), plus
mutants crafted from a few of them, each judged by both reference tools and by our reader
(tests/artifact/test_interop_corpus.py).

The case list is static (ids are known at collection time); `CorpusBuilder` writes the
artifacts on demand into a directory. Everything is deterministic in content: input files
have fixed bytes and mtimes (the reference writers copy file mtimes into the inner tars),
the outer tar's member mtimes, where the writers put the wall clock, are pinned
(`pin_mtimes`), and mutants are made at fixed positions. What still varies: signatures
(keys are made per session; ECDSA signatures are randomised), and the order in which the
reference writers put two or more state scripts in header.tar (Go map order: the
*-scripts-all and *-rootfs-rich cases).

Also here: a parser of `mender-artifact read` output (3.9's and 4.0's layouts), the probes
of what each reference writer refuses, and the helpers to take artifacts apart.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mender_docker.artifact import (
    ArtifactSpec,
    PayloadFile,
    load_private_key,
    sign_manifest,
    write_artifact,
)
from tests.artifact.helpers import Member, openssl
from tests.realstack import require, run

VERSIONS = ("3.9", "4.0")
BINARIES = {"3.9": "mender-artifact", "4.0": "mender-artifact-4"}
MTIME = 1_600_000_000  # every input file's mtime, so the reference writers are reproducible
ZERO_PADDING = 16 << 20  # zero bytes appended after an inner tar's end in the "bomb" cases

# -- keys ------------------------------------------------------------------------------------

KEY_NAMES = ("rsa2048", "rsa3072", "rsa4096", "ec")


def make_interop_keys(directory: Path) -> Dict[str, Path]:
    """RSA 2048/3072/4096 and ECDSA P-256 keys: `NAME` (PKCS#1 "BEGIN RSA PRIVATE KEY" or
    SEC1 "BEGIN EC PRIVATE KEY"), `NAME_p8` (PKCS#8 "BEGIN PRIVATE KEY"), `NAME_pub`."""
    keys: Dict[str, Path] = {}
    for name in KEY_NAMES:
        private, pkcs8, public = (directory / f"{name}{s}.pem" for s in ("", "_p8", "_pub"))
        if name == "ec":
            openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(private))
            openssl("ec", "-in", str(private), "-pubout", "-out", str(public))
        else:
            openssl("genrsa", "-traditional", "-out", str(private), name[3:])
            openssl("rsa", "-in", str(private), "-pubout", "-out", str(public))
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(private), "-out", str(pkcs8))
        keys.update({name: private, f"{name}_p8": pkcs8, f"{name}_pub": public})
    # DSA: no reader takes it (see the *-with-dsa cases)
    keys["dsa"], keys["dsa_pub"] = directory / "dsa.pem", directory / "dsa_pub.pem"
    openssl("dsaparam", "-genkey", "-out", str(keys["dsa"]), "2048")
    openssl("dsa", "-in", str(keys["dsa"]), "-pubout", "-out", str(keys["dsa_pub"]))
    # Ed25519: neither reference version loads it (see the *-with-ed25519 cases)
    keys["ed25519"], keys["ed25519_pub"] = directory / "ed25519.pem", directory / "ed25519_pub.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(keys["ed25519"]))
    openssl("pkey", "-in", str(keys["ed25519"]), "-pubout", "-out", str(keys["ed25519_pub"]))
    return keys


# -- input files -------------------------------------------------------------------------------

LONG_NAME = "layer-" + "x" * 110 + ".tar"
PAYLOADS: Dict[str, bytes] = {
    "a.txt": b"hello\n",
    "b.bin": bytes(range(256)) * 8,
    "empty.dat": b"",
    "c.json": b'{"k": "v"}\n',
    LONG_NAME: b"long name\n",
    "rootfs.ext4": bytes((i * 7) % 251 for i in range(4096)),
    "second.img": b"second rootfs file\n" * 10,
}
SCRIPT = b"#!/bin/sh\necho state script\n"
# Names the reference writers take (checked by the probes below).
VALID_SCRIPTS = ("ArtifactInstall_Enter_00", "ArtifactInstall_Leave_01_foo.bar",
                 "ArtifactCommit_Enter_10_\u00fcn\u00ef", "ArtifactInstall_Enter_05+x",
                 "ArtifactRollback_Error_99", "ArtifactReboot_Leave_50",
                 "ArtifactFailure_Enter_00", "ArtifactRollbackReboot_Enter_00",
                 "ArtifactCommit_Error_01_x-y_z")
# Names the reference writers refuse (Download, Sync and Idle scripts are not artifact
# scripts; the order number must be two digits).
INVALID_SCRIPTS = ("Download_Enter_05+x", "Sync_Enter_00", "Idle_Enter_00", "BadScript",
                   "ArtifactInstall_Enter_0", "ArtifactInstall_Start_00")
META: Dict[str, Any] = {
    "meta.json": {"containers": ["reg/app@sha256:" + "1" * 64], "run_args": "-p 80:80"},
    "meta-rich.json": {"s": "x", "n": [1, 2], "u": "\u00fcn\u00ef", "f": 1.5},
    "meta-empty.json": {},
    "meta-nested.json": {"a": {"b": 1}, "l": [{"c": None}]},
    "meta-list.json": [1, 2],
}


def write_inputs(directory: Path) -> None:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    for name, data in PAYLOADS.items():
        (directory / name).write_bytes(data)
    for name in VALID_SCRIPTS + INVALID_SCRIPTS:
        (directory / "scripts" / name).write_bytes(SCRIPT)
    for name, value in META.items():
        (directory / name).write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    for path in directory.rglob("*"):
        os.utime(path, (MTIME, MTIME))


# -- artifacts taken apart and put back together ---------------------------------------------

def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def outer_members(raw: bytes) -> List[Tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        out = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            out.append((info, handle.read() if handle is not None else b""))
        return out


def member_dict(raw: bytes) -> Dict[str, bytes]:
    return {info.name: data for info, data in outer_members(raw)}


def pack(items: Sequence[Member], fmt: int = tarfile.USTAR_FORMAT,
         dirs: Sequence[str] = ()) -> bytes:
    """A tar of `items` in order; a name in `dirs` becomes a directory entry."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if name in dirs:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def suffix(name: str) -> str:
    for ext in (".gz", ".xz", ".zst"):
        if name.endswith(ext):
            return ext
    return ""


def decompress(name: str, data: bytes) -> bytes:
    ext = suffix(name)
    if ext == ".gz":
        return gzip.decompress(data)
    if ext == ".xz":
        return lzma.decompress(data)
    if ext == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def compress(name: str, data: bytes) -> bytes:
    ext = suffix(name)
    if ext == ".gz":
        return gzip.compress(data, mtime=0)
    if ext == ".xz":
        return lzma.compress(data, preset=0)
    if ext == ".zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def tar_end(inner: bytes) -> int:
    """Offset of an (uncompressed) tar's end-of-archive marker."""
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:") as tar:
        last = tar.getmembers()
    if not last:
        return 0
    info = last[-1]
    return info.offset_data + info.size + (-info.size % 512)


def parse_manifest_lines(raw: bytes) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in raw.decode().splitlines():
        digest, name = line.split("  ", 1)
        out[name] = digest
    return out


def manifest_bytes(entries: Dict[str, str]) -> bytes:
    return "".join(f"{entries[n]}  {n}\n" for n in sorted(entries)).encode()


def inner_files(name: str, data: bytes) -> List[Member]:
    """The members of an inner tar (header or data), directories as (name/, b"")."""
    out: List[Member] = []
    with tarfile.open(fileobj=io.BytesIO(decompress(name, data)), mode="r:") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            out.append((info.name + ("/" if info.isdir() else ""),
                        handle.read() if handle is not None else b""))
    return out


@dataclass
class RawArtifact:
    """An artifact's headers and payload as Python's tarfile sees them (no artifact reader)."""

    version: Dict[str, Any]
    header_info: Dict[str, Any]
    type_info: Optional[Dict[str, Any]]
    meta_data: Optional[bytes]
    scripts: Dict[str, bytes]
    files: List[Tuple[str, int, str]]


def raw_contents(path: Path) -> RawArtifact:
    items = member_dict(path.read_bytes())
    header_name = next(n for n in items if n.startswith("header.tar"))
    header = {n: d for n, d in inner_files(header_name, items[header_name])
              if not n.endswith("/")}
    data_name = next(n for n in items if n.startswith("data/0000.tar"))
    files = [(n, len(d), sha(d)) for n, d in inner_files(data_name, items[data_name])]
    type_info = header.get("headers/0000/type-info")
    return RawArtifact(
        version=json.loads(items["version"]), header_info=json.loads(header["header-info"]),
        type_info=json.loads(type_info) if type_info is not None else None,
        meta_data=header.get("headers/0000/meta-data"),
        scripts={n[len("scripts/"):]: d for n, d in header.items() if n.startswith("scripts/")},
        files=files)


# -- mutations (each maps the artifact's bytes to the mutant's) -----------------------------

Mutation = Callable[[bytes], bytes]


def _find(raw: bytes, prefix: str) -> tarfile.TarInfo:
    for info, _ in outer_members(raw):
        if info.name.startswith(prefix):
            return info
    raise AssertionError(f"no member {prefix!r}")


def flip(prefix: str, at: float = 0.5) -> Mutation:
    """XOR 0x01 into the byte at fraction `at` of member `prefix`'s data."""
    def mutate(raw: bytes) -> bytes:
        info = _find(raw, prefix)
        pos = info.offset_data + min(int(info.size * at), info.size - 1)
        return raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1:]
    return mutate


def flip_inner(prefix: str, locate: Callable[[bytes], int]) -> Mutation:
    """XOR 0x01 at `locate(inner)` of an uncompressed inner tar (no manifest change)."""
    def mutate(raw: bytes) -> bytes:
        info = _find(raw, prefix)
        assert not suffix(info.name), "flip_inner needs an uncompressed member"
        inner = raw[info.offset_data:info.offset_data + info.size]
        pos = info.offset_data + locate(inner)
        return raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1:]
    return mutate


def truncate(where: Callable[[bytes], int]) -> Mutation:
    return lambda raw: raw[:where(raw)]


def in_member(prefix: str, at: float) -> Callable[[bytes], int]:
    def where(raw: bytes) -> int:
        info = _find(raw, prefix)
        return info.offset_data + int(info.size * at)
    return where


def after_last_member(raw: bytes) -> int:
    info = outer_members(raw)[-1][0]
    return info.offset_data + info.size + (-info.size % 512)


def reorder(order: Sequence[str]) -> Mutation:
    """Re-pack the outer tar with its members in `order` (prefixes); contents unchanged."""
    def mutate(raw: bytes) -> bytes:
        items = [(i.name, d) for i, d in outer_members(raw)]
        picked = [next(m for m in items if m[0].startswith(p)) for p in order]
        assert len(picked) == len(items)
        return pack(picked)
    return mutate


def rewrite(change: Callable[[Dict[str, bytes]], Dict[str, bytes]],
            recompute: bool = True) -> Mutation:
    """Re-pack with members changed by `change` (a dict in the original order); the
    manifest is recomputed for every member it lists unless `recompute` is False."""
    def mutate(raw: bytes) -> bytes:
        items = change(member_dict(raw))
        if recompute:
            entries = parse_manifest_lines(items["manifest"])
            for name, data in items.items():
                if name in entries:
                    entries[name] = sha(data)
            items["manifest"] = manifest_bytes(entries)
        return pack(list(items.items()))
    return mutate


def manifest_text(edit: Callable[[bytes], bytes]) -> Mutation:
    def change(items: Dict[str, bytes]) -> Dict[str, bytes]:
        items["manifest"] = edit(items["manifest"])
        return items
    return rewrite(change, recompute=False)


def replace_member(prefix: str, edit: Callable[[str, bytes], bytes],
                   recompute: bool = True) -> Mutation:
    def change(items: Dict[str, bytes]) -> Dict[str, bytes]:
        name = next(n for n in items if n.startswith(prefix))
        items[name] = edit(name, items[name])
        return items
    return rewrite(change, recompute)


def inner_tar(edit: Callable[[bytes], bytes]) -> Callable[[str, bytes], bytes]:
    """Edit a (compressed) inner tar's uncompressed bytes; recompressed as it was."""
    return lambda name, data: compress(name, edit(decompress(name, data)))


def damage_second_end_block(inner: bytes) -> bytes:
    pos = tar_end(inner) + 512 + 100
    assert inner[pos] == 0 and len(inner) >= tar_end(inner) + 1024
    return inner[:pos] + b"\x01" + inner[pos + 1:]


def damage_first_end_block(inner: bytes) -> bytes:
    pos = tar_end(inner) + 100
    return inner[:pos] + b"\x01" + inner[pos + 1:]


def zero_padding(inner: bytes) -> bytes:
    return inner[:tar_end(inner) + 1024] + bytes(ZERO_PADDING)


def junk_after_end(inner: bytes) -> bytes:
    return inner[:tar_end(inner) + 1024] + b"junk" * 128


def without_end(inner: bytes) -> bytes:
    return inner[:tar_end(inner)]


def header_files(edit: Callable[[List[Member]], List[Member]], fmt: int = tarfile.GNU_FORMAT,
                 dirs: Sequence[str] = ()) -> Callable[[str, bytes], bytes]:
    """Re-pack header.tar with its files changed by `edit`; a name in `dirs` becomes a
    directory entry."""
    def change(name: str, data: bytes) -> bytes:
        files = edit(inner_files(name, data))
        return compress(name, pack(files, fmt=fmt, dirs=dirs))
    return change


def with_directories(files: List[Member]) -> List[Member]:
    """GNU tar style: each directory has its own entry before its first file."""
    out: List[Member] = []
    seen = set()
    for name, data in files:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth]) + "/"
            if folder not in seen:
                seen.add(folder)
                out.append((folder, b""))
        out.append((name, data))
    return out


HEADER_DIRS = ("scripts/", "headers/", "headers/0000/")


def add_script(name: str) -> Callable[[List[Member]], List[Member]]:
    def edit(files: List[Member]) -> List[Member]:
        return [files[0], (f"scripts/{name}", SCRIPT)] + files[1:]
    return edit


def add_data_file(name: str, data: bytes) -> Mutation:
    """A second file in the data tar, listed in the manifest (unsigned)."""
    def change(items: Dict[str, bytes]) -> Dict[str, bytes]:
        member = next(n for n in items if n.startswith("data/0000.tar"))
        files = inner_files(member, items[member]) + [(name, data)]
        items[member] = compress(member, pack(files))
        entries = parse_manifest_lines(items["manifest"])
        entries[f"data/0000/{name}"] = sha(data)
        items["manifest"] = manifest_bytes(entries)
        return items
    return rewrite(change, recompute=False)


def drop_member(prefix: str) -> Mutation:
    def change(items: Dict[str, bytes]) -> Dict[str, bytes]:
        return {n: d for n, d in items.items() if not n.startswith(prefix)}
    return rewrite(change, recompute=False)


def crlf(m: bytes) -> bytes:
    return m.replace(b"\n", b"\r\n")


def vtab_separated(m: bytes) -> bytes:
    return m.rstrip(b"\n").replace(b"\n", b"\v") + b"\n"


def formfeed_separated(m: bytes) -> bytes:
    return m.rstrip(b"\n").replace(b"\n", b"\f") + b"\n"


def u2028_separated(m: bytes) -> bytes:
    return m.rstrip(b"\n").replace(b"\n", "\u2028".encode()) + b"\n"


def vtab_line_end(m: bytes) -> bytes:
    return m.replace(b"\n", b"\v\n")


def one_space(m: bytes) -> bytes:
    return m.replace(b"  ", b" ")


def tab_separator(m: bytes) -> bytes:
    return m.replace(b"  ", b"\t")


def extra_line(m: bytes) -> bytes:
    return m + f"{sha(b'ghost')}  data/0000/ghost.bin\n".encode()


def blank_line(m: bytes) -> bytes:
    lines = m.split(b"\n")
    return b"\n".join(lines[:1] + [b""] + lines[1:])


def uppercase_hex(m: bytes) -> bytes:
    return b"\n".join(line[:64].upper() + line[64:] for line in m.split(b"\n"))


def no_final_newline(m: bytes) -> bytes:
    return m.rstrip(b"\n")


def reversed_lines(m: bytes) -> bytes:
    return b"\n".join(reversed(m.rstrip(b"\n").split(b"\n"))) + b"\n"


def duplicate_line(m: bytes) -> bytes:
    first = m.split(b"\n", 1)[0]
    return m + first + b"\n"


def missing_line(m: bytes) -> bytes:
    return b"".join(line for line in m.splitlines(keepends=True) if b"data/0000/" not in line
                    or b"a.txt" not in line)


# -- mutants that reach the parser: re-hashed (above) and re-signed ------------------------------

def resign(raw: bytes, key: Path) -> bytes:
    """The artifact with its manifest signed by `key`: manifest.sig put right after the
    manifest, or replaced there."""
    items = [(i.name, d) for i, d in outer_members(raw) if i.name != "manifest.sig"]
    where = next(n for n, (name, _) in enumerate(items) if name == "manifest")
    signature = sign_manifest(items[where][1], load_private_key(key))
    return pack(items[:where + 1] + [("manifest.sig", signature)] + items[where + 1:])


def header_text(member: str, edit: Callable[[bytes], bytes]) -> Mutation:
    """header.tar re-packed with one member's bytes changed by `edit`; re-hashed."""
    def change(files: List[Member]) -> List[Member]:
        return [(n, edit(d) if n == member else d) for n, d in files]
    return replace_member("header.tar", header_files(change))


def header_json(member: str, edit: Callable[[Any], None]) -> Mutation:
    """header.tar re-packed with one JSON member changed in place by `edit`; re-hashed."""
    def change(raw: bytes) -> bytes:
        value = json.loads(raw)
        edit(value)
        return json.dumps(value).encode()
    return header_text(member, change)


def version_text(text: bytes) -> Mutation:
    return replace_member("version", lambda n, d: text)


def put(*path: Any, value: Any) -> Callable[[Any], None]:
    """Set `value` at `path` (keys and list indexes) in a JSON value; missing objects on
    the way are made."""
    def edit(obj: Any) -> None:
        for key in path[:-1]:
            obj = obj[key] if isinstance(obj, list) else obj.setdefault(key, {})
        obj[path[-1]] = value
    return edit


def drop(*names: str) -> Callable[[List[Member]], List[Member]]:
    return lambda files: [(n, d) for n, d in files if n not in names]


def signature_text(edit: Callable[[bytes], bytes]) -> Mutation:
    """manifest.sig's text changed (the signature itself stays the same bytes)."""
    return replace_member("manifest.sig", lambda n, d: edit(d), recompute=False)


def duplicate(prefix: str) -> Mutation:
    def mutate(raw: bytes) -> bytes:
        items = [(i.name, d) for i, d in outer_members(raw)]
        at = next(n for n, (name, _) in enumerate(items) if name.startswith(prefix))
        return pack(items[:at + 1] + [items[at]] + items[at + 1:])
    return mutate


def chain(*mutations: Mutation) -> Mutation:
    def mutate(raw: bytes) -> bytes:
        for mutation in mutations:
            raw = mutation(raw)
        return raw
    return mutate


# -- the cases -------------------------------------------------------------------------------

Maker = Callable[["CorpusBuilder", Path], Path]


@dataclass(frozen=True)
class CaseSpec:
    id: str
    feature: str
    writer: str  # "3.9" / "4.0" (the reference wrote it), "ours", "crafted" (a mutant)
    make: Maker
    key: Optional[str] = None  # name of the public key that verifies it
    # What mender-artifact 4.0's `validate` says (checked by the tests: a mutant that
    # does not do what it was made for shows up); 3.9 says the same unless v39 says.
    valid: bool = True
    v39: Optional[bool] = None  # 3.9's verdict where it differs from 4.0's
    bomb: bool = False  # an inner tar followed by ZERO_PADDING zeros
    base: Optional[str] = None  # the case a mutant is made from
    says: str = ""  # words our refusal must contain (the field at fault)


@dataclass
class CorpusBuilder:
    root: Path
    keys: Dict[str, Path]
    built: Dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(*BINARIES.values(), "openssl")
        self.inputs = self.root / "inputs"
        self.out = self.root / "artifacts"
        self.out.mkdir(parents=True, exist_ok=True)
        write_inputs(self.inputs)

    def f(self, name: str) -> str:
        return str(self.inputs / name)

    def script(self, name: str) -> str:
        return str(self.inputs / "scripts" / name)

    def key(self, name: str) -> str:
        return str(self.keys[name])

    def get(self, case_id: str) -> Path:
        if case_id not in self.built:
            spec = CASES[case_id]
            self.built[case_id] = spec.make(self, self.out / f"{case_id}.mender")
        return self.built[case_id]

    def build_all(self) -> Dict[str, Path]:
        for case_id in CASES:
            self.get(case_id)
        return self.built

    def reference(self, version: str, args: Sequence[str], out: Path) -> None:
        result = run([BINARIES[version], *args], check=False, timeout=120)
        if result.returncode != 0:
            raise AssertionError(f"mender-artifact {version} refused to write: {list(args)}\n"
                                 f"{result.stdout[-1000:]}{result.stderr[-1000:]}")
        pin_mtimes(out)


def pin_mtimes(path: Path) -> None:
    """Set the outer tar's member mtimes to MTIME, in place (the reference writers put the
    wall clock in header.tar's and data's). Nothing else changes: no checksum covers them."""
    raw = bytearray(path.read_bytes())
    pos = 0
    while pos + 512 <= len(raw) and raw[pos:pos + 512] != bytes(512):
        block = raw[pos:pos + 512]
        assert block[257:263] == b"ustar\0", "pin_mtimes knows ustar headers only"
        size = int(block[124:136].split(b"\0")[0].strip() or b"0", 8)
        block[136:148] = b"%011o\0" % MTIME
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
        raw[pos:pos + 512] = block
        pos += 512 + size + (-size % 512)
    path.write_bytes(bytes(raw))


def ref_write(version: str, command: str, args: Callable[[CorpusBuilder], List[str]]) -> Maker:
    def make(b: CorpusBuilder, out: Path) -> Path:
        b.reference(version, ["write", command, *args(b), "-o", str(out)], out)
        return out
    return make


def ref_sign(version: str, source: str, key: str, force: bool = False) -> Maker:
    def make(b: CorpusBuilder, out: Path) -> Path:
        b.reference(version, ["sign", *(["-f"] if force else []), "-k", b.key(key),
                              "-o", str(out), str(b.get(source))], out)
        return out
    return make


def same_as(source: str) -> Maker:
    """The same file as another case, judged with another key."""
    return lambda b, out: b.get(source)


def mutant(source: str, mutation: Mutation) -> Maker:
    def make(b: CorpusBuilder, out: Path) -> Path:
        out.write_bytes(mutation(b.get(source).read_bytes()))
        return out
    return make


def signed_mutant(source: str, mutation: Mutation, key: str) -> Maker:
    """A mutant re-signed with `key`, so a signature check cannot stop it before the
    parser does."""
    def make(b: CorpusBuilder, out: Path) -> Path:
        out.write_bytes(resign(mutation(b.get(source).read_bytes()), b.keys[key]))
        return out
    return make


def ours(compression: str = "gzip", key: Optional[str] = None, files: Sequence[str] = (
        "a.txt", "b.bin"), scripts: Sequence[str] = ("ArtifactInstall_Enter_00",),
         depends: Optional[Dict[str, Any]] = None) -> Maker:
    def make(b: CorpusBuilder, out: Path) -> Path:
        spec = ArtifactSpec(
            artifact_name="ours-1", device_types=["dev1", "dev2"], payload_type="docker",
            artifact_group="grp", artifact_depends={"artifact_name": ["prev1"]},
            provides={"rootfs-image.docker.version": "ours-1", "extra.key": "value"},
            depends=depends if depends is not None else {"needs.thing": "yes",
                                                         "needs.list": ["a", "b"]},
            clears_provides=["rootfs-image.docker.*"], meta_data=META["meta.json"],
            scripts=[(name, SCRIPT) for name in scripts])
        payloads = [PayloadFile.from_bytes(name, PAYLOADS[name]) for name in files]
        signer = load_private_key(b.keys[key]) if key else None
        write_artifact(out, spec, files=payloads, compression=compression, signer=signer)
        return out
    return make


CASES: Dict[str, CaseSpec] = {}


def case(case_id: str, feature: str, writer: str, make: Maker, **kw: Any) -> None:
    assert case_id not in CASES, case_id
    CASES[case_id] = CaseSpec(case_id, feature, writer, make, **kw)


Args = Callable[[CorpusBuilder], List[str]]


def _args(make: Callable[[CorpusBuilder, str], List[str]], value: str) -> Args:
    """`make` with its second argument bound now (not when a loop has moved on)."""
    return lambda b: make(b, value)


def _module(b: CorpusBuilder, *extra: str) -> List[str]:
    return ["-T", "docker", "-n", "mod-1", "-t", "dev1", "-t", "dev2", *extra]


def _reference_cases(version: str) -> None:
    p = "w39" if version == "3.9" else "w40"
    zstd = ("zstd_fastest", "zstd_best") if version == "4.0" else ()
    no39 = {"v39": False}  # 3.9 reads no zstd

    def w(name: str, feature: str, command: str, args: Callable[[CorpusBuilder], List[str]],
          **kw: Any) -> None:
        case(f"{p}-{name}", feature, version, ref_write(version, command, args), **kw)

    def scripts(b: CorpusBuilder, names: Sequence[str]) -> List[str]:
        return [a for n in names for a in ("-s", b.script(n))]

    # module-image
    w("module-docker", "module-image", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "-f", b.f("b.bin"), "-m", b.f("meta.json"),
        "-s", b.script("ArtifactInstall_Enter_00")))
    w("module-other-type", "module-image", "module-image", lambda b: [
        "-T", "single-file", "-n", "single-1", "-t", "dev1", "-f", b.f("c.json")])
    w("module-no-files", "module-image", "module-image", lambda b: _module(b))
    w("module-no-files-none", "module-image", "module-image", lambda b: _module(
        b, "--compression", "none"))
    w("module-many-files", "module-image", "module-image", lambda b: _module(
        b, *[a for n in ("a.txt", "b.bin", "empty.dat", "c.json", LONG_NAME)
             for a in ("-f", b.f(n))]))
    w("module-empty-file-only", "module-image", "module-image", lambda b: _module(
        b, "-f", b.f("empty.dat")))
    # provides / depends / clears-provides / groups
    w("provides-rich", "provides", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "-g", "grp", "-N", "prev1", "-N", "prev2", "-G", "g1",
        "-G", "g2", "-p", "extra.key:value", "-p", "spaced:a b", "-d", "needs.thing:yes",
        "-d", "other:1", "--clears-provides", "foo.*", "--clears-provides", "bar",
        "--software-name", "app"))
    w("provides-no-defaults", "provides", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "--no-default-software-version",
        "--no-default-clears-provides", "-p", "only:this"))
    w("provides-software", "provides", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "--software-name", "app", "--software-version", "1.2.3",
        "--software-filesystem", "fsys"))
    w("provides-none-at-all", "provides", "module-image", lambda b: _module(
        b, "--no-default-software-version", "--no-default-clears-provides"))
    # meta-data
    w("meta-rich", "meta-data", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "-m", b.f("meta-rich.json")))
    w("meta-empty", "meta-data", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "-m", b.f("meta-empty.json")))
    w("meta-nested", "meta-data", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "-m", b.f("meta-nested.json")))
    # state scripts, one per name (so a refusal names the suffix), then all together
    for number, name in enumerate(VALID_SCRIPTS[:4]):
        w(f"script-{number}", "scripts", "module-image", _args(
            lambda b, name: _module(b, "-f", b.f("a.txt"), *scripts(b, [name])), name))
    w("scripts-all", "scripts", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), *scripts(b, VALID_SCRIPTS)))
    # compression
    for kind in ("none", "gzip", "lzma") + zstd:
        w(f"compression-{kind}", "compression", "module-image", _args(lambda b, kind: _module(
            b, "-f", b.f("a.txt"), "-f", b.f("b.bin"), "-m", b.f("meta.json"),
            "-s", b.script("ArtifactInstall_Enter_00"), "--compression", kind), kind),
          **(no39 if kind.startswith("zstd") else {}))
    # rootfs-image: type-info "type": "" (a writer bug both versions share)
    w("rootfs", "rootfs-image", "rootfs-image", lambda b: [
        "-n", "rootfs-1", "-t", "dev1", "-f", b.f("rootfs.ext4")])
    w("rootfs-rich", "rootfs-image", "rootfs-image", lambda b: [
        "-n", "rootfs-2", "-t", "dev1", "-t", "dev2", "-f", b.f("rootfs.ext4"), "-g", "grp",
        "-N", "prev", "-p", "extra:1", "-d", "needs:x", "--clears-provides", "c.*",
        "--software-name", "os", *scripts(b, VALID_SCRIPTS[:2])])
    w("rootfs-no-checksum", "rootfs-image", "rootfs-image", lambda b: [
        "-n", "rootfs-3", "-t", "dev1", "-f", b.f("rootfs.ext4"), "--no-checksum-provide",
        "--no-default-software-version", "--no-default-clears-provides"])
    w("rootfs-legacy-checksum", "rootfs-image", "rootfs-image", lambda b: [
        "-n", "rootfs-4", "-t", "dev1", "-f", b.f("rootfs.ext4"),
        "--legacy-rootfs-image-checksum"])
    for kind in ("none", "lzma") + zstd[:1]:
        w(f"rootfs-{kind}", "rootfs-image", "rootfs-image", _args(lambda b, kind: [
            "-n", "rootfs-5", "-t", "dev1", "-f", b.f("rootfs.ext4"), "--compression", kind],
            kind),
          **(no39 if kind.startswith("zstd") else {}))
    # -f a -f b: the writer keeps the last file only (a two-file rootfs is crafted below)
    w("rootfs-two-f", "rootfs-image", "rootfs-image", lambda b: [
        "-n", "rootfs-6", "-t", "dev1", "-f", b.f("rootfs.ext4"), "-f", b.f("second.img")])
    # format version 2 (rootfs-image only)
    w("v2-rootfs", "format-v2", "rootfs-image", lambda b: [
        "-v", "2", "-n", "old-1", "-t", "dev1", "-f", b.f("rootfs.ext4")])
    # bootstrap-artifact: payload type null, no payload
    w("bootstrap", "bootstrap", "bootstrap-artifact", lambda b: ["-n", "boot-1", "-t", "dev1"])
    w("bootstrap-rich", "bootstrap", "bootstrap-artifact", lambda b: [
        "-n", "boot-2", "-t", "dev1", "-t", "dev2", "-g", "grp", "-N", "prev", "-G", "g1",
        "-p", "extra:1", "-d", "needs:x", "--clears-provides", "c.*"])
    w("bootstrap-none", "bootstrap", "bootstrap-artifact", lambda b: [
        "-n", "boot-3", "-t", "dev1", "--compression", "none"])
    w("bootstrap-signed", "bootstrap", "bootstrap-artifact", lambda b: [
        "-n", "boot-4", "-t", "dev1", "-k", b.key("rsa2048")], key="rsa2048_pub")
    # signed with -k; 3.9 takes no PKCS#8 key (see WRITE_PROBES)
    forms = ("", "_p8") if version == "4.0" else ("",)
    for name in KEY_NAMES:
        for form in forms:
            w(f"signed-{name}{form}", "signed", "module-image", _args(
                lambda b, k: _module(b, "-f", b.f("a.txt"), "-f", b.f("b.bin"), "-k", b.key(k)),
                name + form), key=f"{name}_pub")
    w("signed-ec-lzma-scripts", "signed", "module-image", lambda b: _module(
        b, "-f", b.f("a.txt"), "--compression", "lzma", "-k", b.key("ec"),
        *scripts(b, VALID_SCRIPTS[:1])), key="ec_pub")
    w("signed-rsa-rootfs", "signed", "rootfs-image", lambda b: [
        "-n", "rootfs-s", "-t", "dev1", "-f", b.f("rootfs.ext4"), "-k", b.key("rsa3072")],
      key="rsa3072_pub")
    # keys that do not fit
    case(f"{p}-signed-no-key", "keys", version, same_as(f"{p}-signed-rsa2048"), valid=False)
    case(f"{p}-signed-rsa3072-with-rsa2048", "keys", version, same_as(f"{p}-signed-rsa3072"),
         key="rsa2048_pub", valid=False)
    case(f"{p}-signed-ec-with-rsa", "keys", version, same_as(f"{p}-signed-ec"),
         key="rsa2048_pub", valid=False)
    case(f"{p}-signed-rsa-with-ec", "keys", version, same_as(f"{p}-signed-rsa2048"),
         key="ec_pub", valid=False)
    case(f"{p}-unsigned-with-key", "keys", version, same_as(f"{p}-module-docker"),
         key="rsa2048_pub", valid=False)
    # the reference loads no Ed25519 public key: it says so and exits 0, checking nothing
    case(f"{p}-signed-rsa-with-ed25519", "keys", version, same_as(f"{p}-signed-rsa2048"),
         key="ed25519_pub")
    case(f"{p}-unsigned-with-ed25519", "keys", version, same_as(f"{p}-module-docker"),
         key="ed25519_pub")
    # nor a DSA key (the same message, exit 0); we refuse it
    case(f"{p}-signed-rsa-with-dsa", "keys", version, same_as(f"{p}-signed-rsa2048"),
         key="dsa_pub")
    # `sign` of an existing artifact
    case(f"{p}-sign-rsa", "sign", version, ref_sign(version, f"{p}-module-docker", "rsa2048"),
         key="rsa2048_pub")
    case(f"{p}-sign-ec", "sign", version, ref_sign(version, f"{p}-compression-lzma", "ec"),
         key="ec_pub")
    case(f"{p}-sign-force-resign", "sign", version,
         ref_sign(version, f"{p}-signed-rsa2048", "ec", force=True), key="ec_pub")
    case(f"{p}-sign-ours", "sign", version, ref_sign(version, "ours-gzip", "rsa4096"),
         key="rsa4096_pub")
    case(f"{p}-sign-rootfs", "sign", version, ref_sign(version, f"{p}-rootfs", "ec"),
         key="ec_pub")


def _our_cases() -> None:
    case("ours-gzip", "ours", "ours", ours())
    case("ours-none", "ours", "ours", ours("none"))
    case("ours-lzma", "ours", "ours", ours("lzma"))
    case("ours-zstd", "ours", "ours", ours("zstd"), v39=False)
    case("ours-no-files", "ours", "ours", ours(files=(), scripts=()))
    case("ours-signed-rsa2048", "ours", "ours", ours(key="rsa2048"), key="rsa2048_pub")
    case("ours-signed-rsa3072-p8", "ours", "ours", ours(key="rsa3072_p8"), key="rsa3072_pub")
    case("ours-signed-ec", "ours", "ours", ours(key="ec"), key="ec_pub")
    case("ours-signed-ec-p8-zstd", "ours", "ours", ours("zstd", key="ec_p8"), key="ec_pub",
         v39=False)


def _mutants() -> None:
    def m(name: str, base: str, mutation: Mutation, valid: bool = False, **kw: Any) -> None:
        kw.setdefault("key", CASES[base].key)
        case(f"mut-{name}", "mutant", "crafted", mutant(base, mutation), valid=valid,
             base=base, **kw)

    for p in ("w39", "w40"):
        base = f"{p}-module-docker"
        # flipped bytes
        m(f"{p}-flip-version", base, flip("version"))
        m(f"{p}-flip-manifest", base, flip("manifest", 0.1))
        m(f"{p}-flip-header", base, flip("header.tar", 0.5))
        m(f"{p}-flip-data-gz", base, flip("data/0000.tar", 0.5))
        # the gzip trailer's length field: the payload is intact, the tar reader stops
        # at the end-of-archive and nothing reads the trailer
        m(f"{p}-flip-data-gz-trailer", base, flip("data/0000.tar", 0.99), valid=True)
        m(f"{p}-flip-data-none-content", f"{p}-compression-none",
          flip_inner("data/0000.tar", lambda inner: 512 + 3))
        m(f"{p}-flip-data-none-tar-header", f"{p}-compression-none",
          flip_inner("data/0000.tar", lambda inner: 2))
        # truncations
        m(f"{p}-trunc-in-version", base, truncate(in_member("version", 0.5)))
        m(f"{p}-trunc-after-manifest", base, truncate(
            lambda raw: _find(raw, "header.tar").offset))
        m(f"{p}-trunc-mid-header", base, truncate(in_member("header.tar", 0.5)))
        m(f"{p}-trunc-mid-data", base, truncate(in_member("data/0000.tar", 0.5)))
        m(f"{p}-trunc-data-last-byte", base, truncate(in_member("data/0000.tar", 0.9999)))
        m(f"{p}-trunc-no-end-blocks", base, truncate(after_last_member), valid=True)
        m(f"{p}-trunc-one-end-block", base, truncate(lambda raw: after_last_member(raw) + 512),
          valid=True)
        # members out of order
        m(f"{p}-order-header-first", base,
          reorder(["version", "header.tar", "manifest", "data/"]))
        m(f"{p}-order-manifest-first", base,
          reorder(["manifest", "version", "header.tar", "data/"]))
        m(f"{p}-order-data-before-header", base,
          reorder(["version", "manifest", "data/", "header.tar"]))
        # inner tar ends
        m(f"{p}-data-end-block2-damaged", f"{p}-compression-none",
          replace_member("data/", inner_tar(damage_second_end_block), recompute=False))
        m(f"{p}-data-gz-end-block2-damaged", base,
          replace_member("data/", inner_tar(damage_second_end_block), recompute=False))
        m(f"{p}-data-end-block1-damaged", base,
          replace_member("data/", inner_tar(damage_first_end_block), recompute=False))
        m(f"{p}-data-no-end-blocks", base,
          replace_member("data/", inner_tar(without_end), recompute=False), valid=True)
        m(f"{p}-data-junk-after-end", base,
          replace_member("data/", inner_tar(junk_after_end), recompute=False), valid=True)
        m(f"{p}-header-end-block2-damaged", base,
          replace_member("header.tar", inner_tar(damage_second_end_block)))
        # zero padding after an inner tar's end ("bombs")
        m(f"{p}-data-gz-zero-padding", base,
          replace_member("data/", inner_tar(zero_padding), recompute=False), valid=True,
          bomb=True)
        m(f"{p}-header-gz-zero-padding", base,
          replace_member("header.tar", inner_tar(zero_padding)), valid=True, bomb=True)
        # header.tar repacked GNU tar style, with directory entries
        m(f"{p}-header-gnu-dirs", base, replace_member(
            "header.tar", header_files(with_directories, dirs=HEADER_DIRS)), valid=True)
        m(f"{p}-header-gnu-no-dirs", base, replace_member(
            "header.tar", header_files(lambda files: files)), valid=True)
        m(f"{p}-header-gnu-dirs-rootfs", f"{p}-rootfs-rich", replace_member(
            "header.tar", header_files(with_directories, dirs=HEADER_DIRS)), valid=True)
        # version member
        m(f"{p}-version-string", base, replace_member(
            "version", lambda n, d: b'{"format":"mender","version":"3"}'))
        m(f"{p}-version-4", base, replace_member(
            "version", lambda n, d: b'{"format":"mender","version":4}'))
        m(f"{p}-version-format-other", base, replace_member(
            "version", lambda n, d: b'{"format":"other","version":3}'), valid=True)
        # a second rootfs file, listed in the manifest
        m(f"{p}-rootfs-two-files", f"{p}-rootfs",
          add_data_file("second.img", PAYLOADS["second.img"]))
        # state scripts the writers refuse, crafted into the header
        m(f"{p}-script-download-plus", base, replace_member(
            "header.tar", header_files(add_script("Download_Enter_05+x"))), valid=True)
        m(f"{p}-script-bad-name", base, replace_member(
            "header.tar", header_files(add_script("BadScript"))), valid=True)
    # the manifest's text (3.9's base only: same bytes in 4.0's)
    base = "w39-module-docker"
    for name, edit in (("crlf", crlf), ("vtab-separated", vtab_separated),
                       ("vtab-line-end", vtab_line_end),
                       ("formfeed-separated", formfeed_separated),
                       ("u2028-separated", u2028_separated), ("one-space", one_space),
                       ("tab-separator", tab_separator), ("extra-line", extra_line),
                       ("uppercase-hex", uppercase_hex),
                       ("no-final-newline", no_final_newline), ("duplicate-line",
                                                               duplicate_line),
                       ("missing-line", missing_line)):
        m(f"manifest-{name}", base, manifest_text(edit))
    m("manifest-unsorted", base, manifest_text(reversed_lines), valid=True)
    m("manifest-blank-line", base, manifest_text(blank_line), valid=True)
    # signed bases
    for base in ("w39-signed-rsa2048", "w40-signed-ec"):
        p = base[:3]
        m(f"{p}-signed-flip-manifest", base, flip("manifest", 0.3))
        m(f"{p}-signed-flip-sig", base, flip("manifest.sig", 0.5))
        m(f"{p}-signed-empty-sig", base, replace_member(
            "manifest.sig", lambda n, d: b"", recompute=False))
        m(f"{p}-signed-sig-stripped", base, drop_member("manifest.sig"))
        m(f"{p}-signed-order-sig-first", base,
          reorder(["version", "manifest.sig", "manifest", "header.tar", "data/"]))
        m(f"{p}-signed-order-sig-after-header", base,
          reorder(["version", "manifest", "header.tar", "manifest.sig", "data/"]))
        m(f"{p}-signed-manifest-crlf", base, manifest_text(crlf))
    # the other compressions and our writer's output
    m("w40-data-zst-zero-padding", "w40-compression-zstd_fastest", replace_member(
        "data/", inner_tar(zero_padding), recompute=False), valid=True, bomb=True, v39=False)
    m("w39-data-xz-zero-padding", "w39-compression-lzma", replace_member(
        "data/", inner_tar(zero_padding), recompute=False), valid=True, bomb=True)
    m("ours-data-gz-end-block2-damaged", "ours-gzip",
      replace_member("data/", inner_tar(damage_second_end_block), recompute=False))
    m("ours-header-gnu-dirs", "ours-gzip", replace_member(
        "header.tar", header_files(with_directories, dirs=HEADER_DIRS)), valid=True)
    m("ours-flip-data-gz", "ours-gzip", flip("data/0000.tar", 0.5))


def _parser_mutants(p: str, signer: str) -> None:
    """Header JSON and `version` mutants of `p`'s artifacts: re-hashed and re-signed with
    `signer`, so that each fault reaches the parser."""
    hi, ti, md = "header-info", "headers/0000/type-info", "headers/0000/meta-data"
    header = "header.tar"

    def m(name: str, base: str, mutation: Mutation, valid: bool = False,
          **kw: Any) -> None:
        case(f"mut-{p}-{name}", "parser", "crafted",
             signed_mutant(f"{p}-{base}", mutation, signer), valid=valid,
             base=f"{p}-{base}", key=f"{signer}_pub", **kw)

    def meta(text: bytes) -> Mutation:
        return header_text(md, lambda d: text)

    mod = "module-docker"
    # a null payload type: a bootstrap artifact, which has no payload and no meta-data
    m("null-type-with-payload", mod, chain(
        header_json(hi, put("payloads", 0, "type", value=None)),
        header_json(ti, put("type", value=None)),
        replace_member(header, header_files(drop(md)))), says="payload type is null")
    m("bootstrap-with-payload", "bootstrap", add_data_file("a.txt", PAYLOADS["a.txt"]),
      says="payload type is null")
    m("bootstrap-with-meta-data", "bootstrap", replace_member(header, header_files(
        lambda files: files + [(md, b'{"a":1}')])), says="bootstrap")
    # header-info: device types, provides and depends of the wrong kind
    m("device-type-empty", mod, header_json(hi, put(
        "artifact_depends", "device_type", value=[])), says="device_type")
    m("device-type-string", mod, header_json(hi, put(
        "artifact_depends", "device_type", value="dev1")), says="device_type")
    for key in ("artifact_name", "artifact_group"):
        word = key.split("_")[1]
        m(f"depends-{word}-string", mod, header_json(hi, put(
            "artifact_depends", key, value="x")), says=f"artifact_depends.{key}")
        m(f"depends-{word}-numbers", mod, header_json(hi, put(
            "artifact_depends", key, value=[1])), says=f"artifact_depends.{key}")
        m(f"provides-{word}-list", mod, header_json(hi, put(
            "artifact_provides", key, value=["x"])), says=f"artifact_provides.{key}")
    m("provides-name-number", mod, header_json(hi, put(
        "artifact_provides", "artifact_name", value=5)),
      says="artifact_name must be a string")
    m("depends-unknown-key", mod, header_json(hi, put(
        "artifact_depends", "other", value=["x"])), valid=True)
    m("type-info-provides-list", mod, header_json(ti, put(
        "artifact_provides", "x", value=["a"])), says="'x' must be a string")
    m("type-info-depends-number", mod, header_json(ti, put(
        "artifact_depends", "x", value=1)), says="'x' must be a string or a list")
    m("type-info-clears-string", mod, header_json(ti, put(
        "clears_artifact_provides", value="a")), says="clears_artifact_provides")
    # unknown keys: refused in version and header-info, taken in type-info
    m("version-unknown-key", mod, version_text(b'{"format":"mender","version":3,"x":1}'),
      says="unknown key 'x'")
    m("header-info-unknown-key", mod, header_json(hi, put("x", value=1)),
      says="unknown key 'x'")
    m("provides-unknown-key", mod, header_json(hi, put(
        "artifact_provides", "x", value="y")), says="unknown key 'x'")
    m("payload-unknown-key", mod, header_json(hi, put("payloads", 0, "x", value=1)),
      says="unknown key 'x'")
    m("type-info-unknown-key", mod, header_json(ti, put("x", value=1)), valid=True)
    # numbers a 64-bit float cannot hold, and what is not JSON
    for name, text in (("1e400", b"1e400"), ("minus-1e400", b"-1e400"),
                       ("400-digits", b"1" + b"0" * 400), ("nan", b"NaN"),
                       ("infinity", b"Infinity"), ("list-1e400", b"[1e400]")):
        m(f"meta-{name}", mod, meta(b'{"n":' + text + b"}"), says="meta-data")
    m("meta-1e-400", mod, meta(b'{"n":1e-400}'), valid=True)  # underflows to 0
    # deliberate differences: JSON the reference takes and we do not (DELIBERATE)
    m("version-keys-case", mod, version_text(b'{"Format":"mender","Version":3}'),
      valid=True)
    m("header-info-keys-case", mod, header_text(hi, lambda d: d.replace(
        b'"payloads"', b'"Payloads"')), valid=True, says="unknown key 'Payloads'")
    m("type-info-keys-case", mod, header_text(ti, lambda d: d.replace(
        b'"artifact_provides"', b'"Artifact_Provides"')), valid=True)
    m("provides-null", mod, header_json(hi, put("artifact_provides", value=None)),
      valid=True, says="artifact_provides is missing")
    m("provides-no-name", mod, header_json(hi, put("artifact_provides", value={})),
      valid=True, says="artifact_name is missing")
    m("depends-null", mod, header_json(hi, put("artifact_depends", value=None)),
      valid=True, says="artifact_depends is missing")
    m("depends-unknown-1e400", mod, header_text(hi, lambda d: d.replace(
        b'"artifact_depends":{', b'"artifact_depends":{"x":1e400,')), valid=True,
      says="out of range")
    for member, word in ((hi, "header-info"), (ti, "type-info"), (md, "meta")):
        m(f"{word}-trailing-text", mod, header_text(member, lambda d: d + b" x"),
          valid=True, says="not valid JSON")
    m("meta-lone-surrogate", mod, meta(b'{"n":"\\ud800"}'), valid=True,
      says="surrogate")
    m("meta-not-utf8", mod, meta(b'{"n":"\xff"}'), valid=True, says="not valid JSON")
    m("type-info-type-other", mod, header_json(ti, put("type", value="other")),
      valid=True, says="differs")
    m("bootstrap-type-info-docker", "bootstrap", header_json(ti, put(
        "type", value="docker")), valid=True, says="differs")
    # type-info and meta-data: one of each, type-info first (the C++ client's rule)
    m("type-info-missing", mod, replace_member(header, header_files(drop(ti))),
      valid=True, says="type-info is missing")
    m("type-info-and-meta-missing", mod, replace_member(header, header_files(drop(ti, md))),
      says="type-info is missing")
    m("meta-before-type-info", mod, replace_member(header, header_files(
        lambda files: files[:-2] + files[-1:] + files[-2:-1])), valid=True,
      says="comes before")
    m("meta-twice", mod, replace_member(header, header_files(
        lambda files: files + files[-1:])), valid=True, says="appears twice")



def _signature_mutants(base: str) -> None:
    """manifest.sig's text: line breaks are skipped, anything else is not base64."""
    p = base[:3]

    def s(name: str, mutation: Mutation, valid: bool = False, says: str = "") -> None:
        case(f"mut-{p}-{name}", "parser", "crafted", mutant(base, mutation), valid=valid,
             base=base, key=CASES[base].key, says=says)

    s("sig-leading-space", signature_text(lambda t: b" " + t), says="not base64")
    s("sig-trailing-space", signature_text(lambda t: t + b" "), says="not base64")
    s("sig-trailing-tab", signature_text(lambda t: t + b"\t"), says="not base64")
    s("sig-trailing-newline", signature_text(lambda t: t + b"\n"), valid=True)
    s("sig-leading-crlf", signature_text(lambda t: b"\r\n" + t), valid=True)
    s("sig-wrapped-64", signature_text(lambda t: b"\n".join(
        t[i:i + 64] for i in range(0, len(t), 64)) + b"\n"), valid=True)
    s("sig-no-padding", signature_text(lambda t: t.rstrip(b"=") if t.endswith(b"=")
                                       else t[:-1]), says="not base64")
    s("manifest-twice-with-key", duplicate("manifest"),
      says="'manifest' appears twice")


for _version in VERSIONS:
    _reference_cases(_version)
_our_cases()
_mutants()
_parser_mutants("w39", "rsa2048")
_parser_mutants("w40", "ec")
_signature_mutants("w39-signed-rsa2048")
_signature_mutants("w40-signed-ec")


# -- what the reference writers refuse ---------------------------------------------------------

@dataclass(frozen=True)
class WriteProbe:
    id: str
    args: Callable[[CorpusBuilder], List[str]]


def _probe_script(name: str) -> WriteProbe:
    return WriteProbe(f"script-{name}", lambda b: [
        "write", "module-image", *_module(b), "-s", b.script(name)])


WRITE_PROBES: List[WriteProbe] = [
    *[WriteProbe(f"key-{name}{form}", _args(lambda b, k: [
        "write", "module-image", *_module(b), "-f", b.f("a.txt"), "-k", b.key(k)], name + form))
      for name in KEY_NAMES for form in ("", "_p8")],
    WriteProbe("key-ed25519", lambda b: [
        "write", "module-image", *_module(b), "-f", b.f("a.txt"), "-k", b.key("ed25519")]),
    WriteProbe("sign-pkcs8", lambda b: ["sign", "-k", b.key("rsa2048_p8"),
                                        str(b.get("ours-gzip"))]),
    WriteProbe("sign-already-signed", lambda b: ["sign", "-k", b.key("ec"),
                                                 str(b.get("ours-signed-rsa2048"))]),
    *[_probe_script(name) for name in VALID_SCRIPTS + INVALID_SCRIPTS],
    WriteProbe("rootfs-script-download", lambda b: [
        "write", "rootfs-image", "-n", "r", "-t", "dev1", "-f", b.f("rootfs.ext4"),
        "-s", b.script("Download_Enter_05+x")]),
    WriteProbe("compression-zstd_best", lambda b: [
        "write", "module-image", *_module(b), "--compression", "zstd_best"]),
    WriteProbe("compression-zstd", lambda b: [
        "write", "module-image", *_module(b), "--compression", "zstd"]),
    WriteProbe("module-image-v2", lambda b: [
        "write", "module-image", *_module(b), "-v", "2"]),
    WriteProbe("meta-not-object", lambda b: [
        "write", "module-image", *_module(b), "-m", b.f("meta-list.json")]),
    WriteProbe("rootfs-two-f", lambda b: [
        "write", "rootfs-image", "-n", "r", "-t", "dev1", "-f", b.f("rootfs.ext4"),
        "-f", b.f("second.img")]),
]


@dataclass(frozen=True)
class ProbeResult:
    returncode: int
    wrote: bool  # a non-empty output file exists
    message: str


def run_probe(b: CorpusBuilder, probe: WriteProbe, version: str) -> ProbeResult:
    args = probe.args(b)
    out = b.root / "probes" / f"{probe.id}-{version}.mender"
    out.parent.mkdir(exist_ok=True)
    if args[0] == "write" or args[0] == "sign":
        args = [*args[:-1], "-o", str(out), args[-1]] if args[0] == "sign" else [
            *args, "-o", str(out)]
    result = run([BINARIES[version], *args], check=False, timeout=120)
    wrote = out.exists() and out.stat().st_size > 0
    text = (result.stderr + result.stdout).strip().splitlines()
    message = next((line for line in text if not _progress(line)), "")
    return ProbeResult(result.returncode, wrote, message)


_PROGRESS = re.compile(r"^(Writing Artifact|Version|Manifest|Header|Payload|0%|\||\.+$)")


def _progress(line: str) -> bool:
    return not line.strip() or "\u2713" in line or bool(_PROGRESS.match(line.strip()))


# -- the reference's `read` output -------------------------------------------------------------

@dataclass
class ReadOutput:
    """What `mender-artifact read` shows (3.9 and 4.0 layouts), as plain values:
    lists of strings, dicts of strings (a list value shown as Go shows it, "[a b]")."""

    name: str = ""
    format: str = ""
    version: str = ""
    signature: str = ""
    devices: List[str] = field(default_factory=list)
    provides_group: str = ""
    depends_artifacts: List[str] = field(default_factory=list)
    depends_groups: List[str] = field(default_factory=list)
    scripts: List[str] = field(default_factory=list)
    type: Optional[str] = None
    provides: Dict[str, str] = field(default_factory=dict)
    depends: Dict[str, str] = field(default_factory=dict)
    clears_provides: List[str] = field(default_factory=list)
    meta_data: Optional[Any] = None
    meta_error: str = ""  # 3.9: "Invalid metadata section: ..." instead of the meta-data
    files: List[Tuple[str, int, str]] = field(default_factory=list)


def _go_list(text: str) -> List[str]:
    """`[a b]` (3.9), `[a, b]` (4.0), `'[a b]'` or `["a", "b"]` (3.9) -> ["a", "b"]."""
    text = text.strip().strip("'")
    if text.startswith('["'):
        return [str(item) for item in json.loads(text)]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        return []
    return text.split(", ") if ", " in text else text.split(" ")


def go_value(value: Any) -> str:
    """How both versions print a provides/depends value."""
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


def parse_read(stdout: str) -> ReadOutput:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lower().startswith("mender artifact:"))
    out = ReadOutput()
    section = ""
    meta_lines: List[str] = []
    current: Dict[str, str] = {}

    def flush_file() -> None:
        if current:
            out.files.append((current["name"], int(current["size"]), current["checksum"]))
            current.clear()

    for raw in lines[start + 1:]:
        text = raw.strip()
        label, _, value = text.lstrip("- ").partition(":")
        value = value.strip()
        top = {"Name": "name", "Format": "format", "Version": "version",
               "Signature": "signature", "Provides group": "provides_group"}
        if label in top and raw.startswith("  ") and not raw.startswith("   ") \
                and section not in ("provides", "depends"):
            setattr(out, top[label], value)
            continue
        if label == "Compatible devices":
            out.devices = _go_list(value)
        elif label == "Depends on one of artifact(s)":
            out.depends_artifacts = _go_list(value)
        elif label == "Depends on one of group(s)":
            out.depends_groups = _go_list(value)
        elif label == "State scripts" and section == "":
            section = "scripts"
        elif text == "Updates:":
            section = "updates"
        elif label == "Type" and section != "files":
            out.type = None if value == "Empty type" else value
            section = "update"
        elif label in ("Provides", "Depends") and section in ("update", "provides", "depends"):
            section = label.lower()
        elif label == "Clears Provides":
            out.clears_provides = _go_list(value)
            section = "update"
        elif label == "Metadata":
            section = "meta" if not value else "update"
            if value.startswith("Invalid metadata"):
                out.meta_error = value
        elif label == "Files":
            if meta_lines:
                out.meta_data = json.loads("\n".join(meta_lines))
            section = "files"
        elif section == "scripts" and text:
            out.scripts.append(text.lstrip("- ").strip())
        elif section in ("provides", "depends") and text:
            key, _, val = text.partition(": ")
            getattr(out, section)[key] = val
        elif section == "meta" and text:
            meta_lines.append(raw)
        elif section == "files" and text:
            if text.startswith("- ") or (label == "name" and "name" in current):
                flush_file()
            current[label] = value
    flush_file()
    return out
