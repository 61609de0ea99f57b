"""Our reader side by side with mender-artifact 3.9 and 4.0 on the interop corpus
(tests/artifact/interop_corpus.py: artifacts both reference versions and we wrote, and
mutants of them).

- verdict: the reference's `validate` exit status (with -k when the case has a key) and
  ours (`read_artifact` raising ArtifactError or not) agree, case by case, version by
  version, except the deliberate differences in DELIBERATE;
- fields: where both accept, what `mender-artifact read` shows equals what we found, and
  what we found equals the raw header JSON and payload (taken apart with tarfile);
- the corpus does what it claims: each case's reference verdict is the one it was made for
  (this also records where 3.9 and 4.0 differ), and each reference writer takes or refuses
  what REFERENCE_WRITES says;
- `mender-docker validate` agrees on a few cases; the zero-padding cases are judged
  without decompressing the padding.

The corpus is built once per module; each reference `validate` runs once per case and
version, `read` once per case and version where both accept.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Tuple, cast

import pytest

from mender_docker.artifact import ArtifactInfo, load_public_key, read_artifact
from mender_docker.artifact import compression as comp
from mender_docker.errors import ArtifactError
from tests.artifact.interop_corpus import (
    BINARIES,
    CASES,
    VERSIONS,
    WRITE_PROBES,
    ZERO_PADDING,
    CorpusBuilder,
    ReadOutput,
    WriteProbe,
    go_value,
    parse_read,
    raw_contents,
    run_probe,
)
from tests.realstack import run

pytestmark = pytest.mark.real

_ZSTD_39 = "mender-artifact 3.9 has no zstd ('Invalid structure: [manifest header.tar.zst]'); " \
    "4.0 and we read it"
_ED25519 = "mender-artifact (3.9 and 4.0) loads no Ed25519 public key: it prints 'unsupported " \
    "public key type' and exits 0 having checked nothing; we refuse"
_NO_KEY = "signed, judged without a key: mender-artifact fails ('missing verifier'); we verify " \
    "the checksums and report the signature as not verified (signature_verified False; " \
    "`mender-docker validate` says so, --require-signature makes it fail)"
_NESTED_39 = "3.9's read shows 'Invalid metadata section: l: List cannot contain JSON " \
    "object or list' (its validate accepts it); 4.0 and we show the meta-data"
_DIRS = "mender-artifact lists header.tar's directory entry scripts/ as a state script " \
    "named 'scripts'; we list script files only"
_V2 = "format version 2 (rootfs-image only, clients before 2019): we read version 3 only"
_TRAILER = "mender-artifact stops at the data tar's end and never reads the compressed " \
    "stream's trailer; we check it (gzip CRC-32 and length, xz check, zstd frame end)"
_TRUNCATED = "mender-artifact takes the end of the file at a member boundary as the end of " \
    "the tar; we want the two zero blocks that end every tar, so a cut download cannot pass"
_AFTER_END = "mender-artifact ignores what follows a tar's end-of-archive marker; we read " \
    "it: zeros only (tar record padding), and at most 1 MiB of them once decompressed, so " \
    "a decompression bomb costs bounded work and nothing after the end passes unseen"
_FORMAT = "mender-artifact takes any non-empty 'format' in 'version'; we want 'mender'"
_SCRIPTS = "mender-artifact's writers refuse this script name ('Invalid script name' / " \
    "'Unsupported script state') but its reader does not check; we check on read too"
_DSA = "mender-artifact (3.9 and 4.0) loads no DSA public key either ('unsupported public " \
    "key type', exit 0, nothing checked); we refuse the key in one line"
_KEYS_CASE = "Go's JSON decoder matches keys ignoring case ('Payloads', 'Format'); we match them " \
    "exactly, as the C++ client (mender-update) does, which refuses these"
_KEYS_CASE_TYPE_INFO = "type-info keys in another case ('Artifact_Provides'): Go's decoder " \
    "takes them as the known key and shows those provides; type-info's unknown keys are " \
    "taken, so we (and the C++ client, whose keys match exactly) pass it over"
_NAMELESS = "mender-artifact reads an artifact with no artifact_provides, no artifact_name or no " \
    "artifact_depends (null); the C++ client refuses each, and so do we"
_TRAILING = "mender-artifact decodes the first JSON value of a member and ignores what follows; " \
    "we hold each member to one JSON value, as the C++ client does"
_UNUSED_NUMBER = "mender-artifact refuses 1e400 where it decodes it, and skips it in an unknown " \
    "artifact_depends key; we keep (and show) every key, so we refuse it everywhere"
_NOT_UNICODE = "Go replaces a lone surrogate or invalid UTF-8 with U+FFFD (the meta-data changes " \
    "silently); we refuse text that is not Unicode"
_TYPE_DIFFERS = "mender-artifact ignores a type-info type that differs from header-info's; it " \
    "leaves the payload's type in doubt, and 4.3.1 and the C++ client refuse it; so do we"
_HEADER_ORDER = "mender-artifact takes meta-data before type-info, either twice (the last wins) " \
    "or no type-info at all; the C++ client wants one type-info, then at most one meta-data, " \
    "and so do we"
_BLANK = "mender-artifact skips blank manifest lines; none of its writers writes one, and " \
    "we hold the manifest to its grammar (<sha256>  <name> LF lines)"

# The deliberate differences: "CASE" or "CASE@VERSION" (verdicts), "CASE:FIELD" or
# "CASE:FIELD@VERSION" (one field of test_fields) -> why.
DELIBERATE: Dict[str, str] = {
    **{f"mut-{v}-{case}": why for v in ("w39", "w40") for case, why in (
        ("flip-data-gz-trailer", _TRAILER), ("trunc-no-end-blocks", _TRUNCATED),
        ("trunc-one-end-block", _TRUNCATED), ("data-no-end-blocks", _TRUNCATED),
        ("data-junk-after-end", _AFTER_END), ("data-gz-zero-padding", _AFTER_END),
        ("header-gz-zero-padding", _AFTER_END), ("version-format-other", _FORMAT),
        ("script-download-plus", _SCRIPTS), ("script-bad-name", _SCRIPTS))},
    "mut-w39-data-xz-zero-padding": _AFTER_END,
    "mut-w40-data-zst-zero-padding@4.0": _AFTER_END,
    "mut-manifest-blank-line": _BLANK,
    "w39-v2-rootfs": _V2,
    "w40-v2-rootfs": _V2,
    "w39-signed-no-key": _NO_KEY,
    "w40-signed-no-key": _NO_KEY,
    **{f"mut-{v}-{case}": why for v in ("w39", "w40") for case, why in (
        ("version-keys-case", _KEYS_CASE), ("header-info-keys-case", _KEYS_CASE),
        ("provides-null", _NAMELESS), ("provides-no-name", _NAMELESS),
        ("depends-null", _NAMELESS), ("depends-unknown-1e400", _UNUSED_NUMBER),
        ("header-info-trailing-text", _TRAILING), ("type-info-trailing-text", _TRAILING),
        ("meta-trailing-text", _TRAILING), ("meta-lone-surrogate", _NOT_UNICODE),
        ("meta-not-utf8", _NOT_UNICODE), ("type-info-type-other", _TYPE_DIFFERS),
        ("bootstrap-type-info-docker", _TYPE_DIFFERS), ("type-info-missing", _HEADER_ORDER),
        ("meta-before-type-info", _HEADER_ORDER), ("meta-twice", _HEADER_ORDER))},
    **{f"mut-{v}-type-info-keys-case:provides": _KEYS_CASE_TYPE_INFO for v in ("w39", "w40")},
    "w39-signed-rsa-with-dsa": _DSA,
    "w40-signed-rsa-with-dsa": _DSA,
    "w39-signed-rsa-with-ed25519": _ED25519,
    "w40-signed-rsa-with-ed25519": _ED25519,
    "w39-unsigned-with-ed25519": _ED25519,
    "w40-unsigned-with-ed25519": _ED25519,
    "w40-compression-zstd_fastest@3.9": _ZSTD_39,
    "w40-compression-zstd_best@3.9": _ZSTD_39,
    "w40-rootfs-zstd_fastest@3.9": _ZSTD_39,
    "ours-zstd@3.9": _ZSTD_39,
    "ours-signed-ec-p8-zstd@3.9": _ZSTD_39,
    "mut-w40-data-zst-zero-padding@3.9": _ZSTD_39,
    "w39-meta-nested:meta-data@3.9": _NESTED_39,
    "w40-meta-nested:meta-data@3.9": _NESTED_39,
    **{f"mut-{case}:state scripts": _DIRS for case in (
        "w39-header-gnu-dirs", "w40-header-gnu-dirs", "w39-header-gnu-dirs-rootfs",
        "w40-header-gnu-dirs-rootfs", "ours-header-gnu-dirs")},
}

# What each reference writer takes: probe id -> (3.9 writes it, 4.0 writes it).
_BOTH, _NEITHER, _ONLY_40 = (True, True), (False, False), (False, True)
REFERENCE_WRITES: Dict[str, Tuple[bool, bool]] = {
    "key-rsa2048": _BOTH, "key-rsa3072": _BOTH, "key-rsa4096": _BOTH, "key-ec": _BOTH,
    # 3.9: "x509: failed to parse private key (use ParsePKCS8PrivateKey instead ...)"
    "key-rsa2048_p8": _ONLY_40, "key-rsa3072_p8": _ONLY_40, "key-rsa4096_p8": _ONLY_40,
    "key-ec_p8": _ONLY_40, "sign-pkcs8": _ONLY_40,
    "key-ed25519": _NEITHER,  # "unsupported private key type"
    "sign-already-signed": _NEITHER,  # "Artifact already signed ... Use force option"
    "script-ArtifactInstall_Enter_00": _BOTH,
    "script-ArtifactInstall_Leave_01_foo.bar": _BOTH,
    "script-ArtifactCommit_Enter_10_\u00fcn\u00ef": _BOTH,
    "script-ArtifactInstall_Enter_05+x": _BOTH,
    "script-ArtifactRollback_Error_99": _BOTH,
    "script-ArtifactReboot_Leave_50": _BOTH,
    "script-ArtifactFailure_Enter_00": _BOTH,
    "script-ArtifactRollbackReboot_Enter_00": _BOTH,
    "script-ArtifactCommit_Error_01_x-y_z": _BOTH,
    "script-Download_Enter_05+x": _NEITHER,  # "Unsupported script state: Download"
    "script-Sync_Enter_00": _NEITHER,
    "script-Idle_Enter_00": _NEITHER,
    "script-BadScript": _NEITHER,  # "Invalid script name"
    "script-ArtifactInstall_Enter_0": _NEITHER,
    "script-ArtifactInstall_Start_00": _NEITHER,
    "rootfs-script-download": _NEITHER,
    "compression-zstd_best": _ONLY_40,
    "compression-zstd": _NEITHER,  # 4.0 names its levels: zstd_fastest ... zstd_best
    "module-image-v2": _NEITHER,  # says "need at least artifact format version 3", exits 0
    "meta-not-object": _NEITHER,
    "rootfs-two-f": _BOTH,  # keeps the last -f only
}

# Cases `mender-docker validate` judges too.
CLI_CASES = ("w39-module-docker", "w40-signed-ec", "w39-signed-no-key", "w40-bootstrap",
             "w39-rootfs", "w40-script-1", "mut-w39-trunc-mid-data",
             "w40-signed-rsa3072-with-rsa2048", "mut-manifest-crlf", "mut-w40-header-gnu-dirs")
# The zero-padding cases may decompress this much (all their real content included).
PADDING_READ_LIMIT = 2 << 20


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    message: str

    def __str__(self) -> str:
        return ("accepts" if self.accepted else "refuses") + (
            f": {self.message}" if self.message else "")


def _message(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines()]
    text = " ".join(line for line in lines if line and not line.startswith(
        ("Reading Artifact", "0%", "|", "...")))
    return re.sub(r"\s+", " ", text)[:300]


class Judge:
    """The corpus, built once, and every verdict on it, each computed once."""

    def __init__(self, builder: CorpusBuilder) -> None:
        self.builder = builder
        self.keys = builder.keys
        self.paths = builder.build_all()
        with ThreadPoolExecutor(max_workers=4) as pool:
            jobs = {(c, v): pool.submit(self._validate, c, v) for c in CASES for v in VERSIONS}
            self.reference = {job: future.result() for job, future in jobs.items()}
        self._ours: Dict[str, Tuple[Verdict, Optional[ArtifactInfo]]] = {}
        self._read: Dict[Tuple[str, str], ReadOutput] = {}

    def key_args(self, case_id: str) -> List[str]:
        key = CASES[case_id].key
        return ["-k", str(self.keys[key])] if key else []

    def _validate(self, case_id: str, version: str) -> Verdict:
        path = str(self.paths[case_id])
        result = run([BINARIES[version], "validate", *self.key_args(case_id), path],
                     check=False, timeout=120)
        return Verdict(result.returncode == 0,
                       _message(result).replace(path, self.paths[case_id].name))

    def read(self, case_id: str, version: str) -> ReadOutput:
        if (case_id, version) not in self._read:
            result = run([BINARIES[version], "read", *self.key_args(case_id),
                          str(self.paths[case_id])], timeout=120)
            self._read[case_id, version] = parse_read(result.stdout)
        return self._read[case_id, version]

    def ours(self, case_id: str) -> Tuple[Verdict, Optional[ArtifactInfo]]:
        """Anything but an ArtifactError propagates: a crash is a bug of its own."""
        if case_id not in self._ours:
            key = CASES[case_id].key
            try:
                verify = load_public_key(self.keys[key]) if key else None
                info = read_artifact(self.paths[case_id], verify_key=verify)
                self._ours[case_id] = (Verdict(True, ""), info)
            except ArtifactError as exc:
                self._ours[case_id] = (Verdict(False, str(exc)), None)
        return self._ours[case_id]


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory, interop_keys: Dict[str, Path]) -> Judge:
    return Judge(CorpusBuilder(tmp_path_factory.mktemp("interop-corpus"), interop_keys))


def deliberate(case_id: str, version: str, field: str = "") -> Optional[str]:
    keys = [f"{case_id}:{field}@{version}", f"{case_id}:{field}"] if field else [
        f"{case_id}@{version}", case_id]
    return next((DELIBERATE[key] for key in keys if key in DELIBERATE), None)


def test_the_corpus_is_large_enough_and_the_exceptions_name_cases() -> None:
    written = [c for c in CASES.values() if c.writer in VERSIONS]
    assert len(CASES) >= 100
    for version in VERSIONS:
        assert len([c for c in written if c.writer == version]) >= 40
    fields = set(_their_view(ReadOutput()))
    for entry in DELIBERATE:
        rest, _, version = entry.partition("@")
        case_id, _, field = rest.partition(":")
        assert case_id in CASES and version in ("",) + VERSIONS, entry
        assert not field or field in fields, entry
    assert {probe.id for probe in WRITE_PROBES} == set(REFERENCE_WRITES)


@pytest.mark.parametrize("case_id", list(CASES))
def test_verdict(judge: Judge, case_id: str) -> None:
    ours, _ = judge.ours(case_id)
    disagreements = []
    for version in VERSIONS:
        theirs = judge.reference[case_id, version]
        if theirs.accepted != ours.accepted and not deliberate(case_id, version):
            disagreements.append(f"mender-artifact {version} {theirs} -- ours {ours}")
    assert not disagreements, "\n".join(disagreements)
    says = CASES[case_id].says
    assert not says or (not ours.accepted and says in ours.message), \
        f"our refusal should name {says!r}: ours {ours}"


@pytest.mark.parametrize("case_id", list(CASES))
def test_the_reference_verdict_is_the_one_the_case_was_made_for(judge: Judge,
                                                                 case_id: str) -> None:
    spec = CASES[case_id]
    for version in VERSIONS:
        expected = spec.v39 if version == "3.9" and spec.v39 is not None else spec.valid
        got = judge.reference[case_id, version]
        assert got.accepted == expected, f"mender-artifact {version} {got}"


def _our_view(info: ArtifactInfo) -> Dict[str, Any]:
    return {
        "name": info.artifact_name,
        "version": str(info.version),
        "signature": "verified" if info.signature_verified else (
            "not verified" if info.signed else "none"),
        "devices": list(info.device_types),
        "provides group": info.artifact_group or "",
        "depends on artifacts": list(info.artifact_depends.get("artifact_name", [])),
        "depends on groups": list(info.artifact_depends.get("artifact_group", [])),
        "state scripts": sorted(script.name for script in info.scripts),
        "payload type": info.payload_type or None,
        "provides": {k: go_value(v) for k, v in info.provides.items()},
        "depends": {k: go_value(v) for k, v in info.depends.items()},
        "clears provides": list(info.clears_provides),
        "meta-data": info.meta_data or {},
        "files": sorted((f.name, f.size, f.sha256) for f in info.files),
    }


def _their_view(out: ReadOutput) -> Dict[str, Any]:
    signature = out.signature.lower()
    return {
        "name": out.name,
        "version": out.version,
        "signature": "verified" if "verified correctly" in signature else (
            "none" if signature.startswith("no signature") else "not verified"),
        "devices": out.devices,
        "provides group": out.provides_group,
        "depends on artifacts": out.depends_artifacts,
        "depends on groups": out.depends_groups,
        "state scripts": sorted(out.scripts),
        "payload type": out.type,
        "provides": out.provides,
        "depends": out.depends,
        "clears provides": out.clears_provides,
        "meta-data": out.meta_error or out.meta_data or {},
        # sorted: the reference lists them in the manifest's order if that is not sorted
        "files": sorted(out.files),
    }


def _raw_mismatches(path: Path, info: ArtifactInfo) -> List[str]:
    """What we found against the artifact taken apart by tarfile alone."""
    raw = raw_contents(path)
    meta = raw.meta_data.decode() if raw.meta_data is not None else ""
    expected: Dict[str, Any] = {
        "header-info": raw.header_info,
        "artifact_depends": raw.header_info.get("artifact_depends"),
        "type-info": raw.type_info,
        "provides": (raw.type_info or {}).get("artifact_provides") or {},
        "depends": (raw.type_info or {}).get("artifact_depends") or {},
        "clears_provides": (raw.type_info or {}).get("clears_artifact_provides") or [],
        "meta-data": json.loads(meta) if meta.strip() else None,
        "state scripts": raw.scripts,
        "payload files": raw.files,
    }
    found: Dict[str, Any] = {
        "header-info": info.header_info,
        "artifact_depends": info.artifact_depends,
        "type-info": info.type_info,
        "provides": info.provides,
        "depends": info.depends,
        "clears_provides": info.clears_provides,
        "meta-data": info.meta_data,
        "state scripts": info.script_contents,
        "payload files": [(f.name, f.size, f.sha256) for f in info.files],
    }
    return [f"{name}: raw {expected[name]!r}, we {found[name]!r}"
            for name in expected if expected[name] != found[name]]


# Cases a reference accepts, but for those we deliberately refuse.
FIELD_CASES = [c.id for c in CASES.values() if (c.valid or c.v39)
               and not any(k == c.id or k.startswith(c.id + "@") for k in DELIBERATE)]


@pytest.mark.parametrize("case_id", FIELD_CASES)
def test_fields(judge: Judge, case_id: str) -> None:
    ours, info = judge.ours(case_id)
    both = [v for v in VERSIONS if ours.accepted and judge.reference[case_id, v].accepted]
    assert info is not None and both, "meant to be accepted by both (see test_verdict)"
    mismatches = _raw_mismatches(judge.paths[case_id], info)
    mine = _our_view(info)
    for version in both:
        theirs = _their_view(judge.read(case_id, version))
        mismatches += [f"{name}: mender-artifact {version} {theirs[name]!r}, we {mine[name]!r}"
                       for name in mine if mine[name] != theirs[name]
                       and not deliberate(case_id, version, name)]
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_mender_docker_validate(judge: Judge, case_id: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from mender_docker.cli.main import main

    status = main(["validate", str(judge.paths[case_id]), *judge.key_args(case_id)])
    out, err = capsys.readouterr()
    ours, _ = judge.ours(case_id)
    assert (status == 0) == ours.accepted, f"the CLI: {status} {out}{err}; the library {ours}"
    for version in VERSIONS:
        theirs = judge.reference[case_id, version]
        if not deliberate(case_id, version):
            assert (status == 0) == theirs.accepted, \
                f"mender-artifact {version} {theirs}; mender-docker validate: {out}{err}"
    if status == 0 and CASES[case_id].key:
        assert "signature verified" in out
    if case_id.endswith("signed-no-key"):
        assert "NOT verified" in out


def test_read_json_prints_strict_json(judge: Judge, capsys: pytest.CaptureFixture[str]) -> None:
    """`mender-docker read --json` on every case we accept: JSON with no NaN or Infinity,
    the header-info and meta-data as the library found them."""
    from mender_docker.cli.main import main

    def no_constant(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")

    accepted = [c for c in CASES if judge.ours(c)[0].accepted]
    assert len(accepted) > 100
    for case_id in accepted:
        status = main(["read", "--json", str(judge.paths[case_id]), *judge.key_args(case_id)])
        out, err = capsys.readouterr()
        assert status == 0, f"{case_id}: {err}"
        shown = json.loads(out, parse_constant=no_constant)
        info = judge.ours(case_id)[1]
        assert info is not None
        assert shown["header_info"] == info.header_info, case_id
        assert shown["meta_data"] == info.meta_data, case_id


class _Counting:
    """A decompressed stream that counts what is read from it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


@pytest.mark.parametrize("case_id", [c.id for c in CASES.values() if c.bomb])
def test_zero_padding_is_not_decompressed(judge: Judge, case_id: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept or refuse, but without inflating the padding that follows the tar's end."""
    streams: List[_Counting] = []
    real_open = comp.open_reader

    def counting_open(compression: str, raw: IO[bytes]) -> IO[bytes]:
        stream = _Counting(real_open(compression, raw))
        streams.append(stream)
        return cast(IO[bytes], stream)

    monkeypatch.setattr(comp, "open_reader", counting_open)
    try:
        read_artifact(judge.paths[case_id])
    except ArtifactError:
        pass
    assert streams, "the reader no longer decompresses through compression.open_reader"
    inflated = sum(stream.count for stream in streams)
    assert inflated <= PADDING_READ_LIMIT, (
        f"decompressed {inflated} bytes of an artifact whose inner tars hold a few KB "
        f"followed by {ZERO_PADDING} zero bytes")


@pytest.mark.parametrize("probe", WRITE_PROBES, ids=lambda probe: probe.id)
def test_what_each_reference_writer_takes(judge: Judge, probe: WriteProbe) -> None:
    results = {version: run_probe(judge.builder, probe, version) for version in VERSIONS}
    got = tuple(results[version].wrote for version in VERSIONS)
    assert got == REFERENCE_WRITES[probe.id], {v: r.message for v, r in results.items()}
