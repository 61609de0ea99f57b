"""Shell metacharacters in run arguments are inert: no shell ever sees them.

The original module ran `docker run -dt $run_args $image` through a shell; here
the meta-data is split with shlex into literal argv entries and handed to the
engine as an argument list. Proven on the real dockerd with a busybox image:
the payloads reach the container byte for byte and nothing runs on the host.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from mender_docker.module.engine import Engine
from mender_docker.module.errors import EngineError
from mender_docker.spec import PINNED_REF_RE, MetadataError, parse_metadata_json
from tests.realstack import ImageFactory, run, unique

DIGEST = "sha256:" + "5" * 64


def payloads(marker_dir: Path) -> Dict[str, str]:
    """Each payload would create its own marker file if a shell ever evaluated it."""
    tag = uuid.uuid4().hex[:8]

    def m(kind: str) -> str:
        return str(marker_dir / f"pwned-{tag}-{kind}")

    return {
        "semicolon": f"; touch {m('semicolon')}",
        "subshell": f"$(touch {m('subshell')})",
        "backticks": f"`touch {m('backticks')}`",
        "pipe": f"| touch {m('pipe')}",
        "and": f"&& touch {m('and')}",
        "or": f"|| touch {m('or')}",
        "newline": f"x\ntouch {m('newline')}\n",
        "redirect": f"> {m('redirect')}",
        "ifs": f"${{IFS}}touch${{IFS}}{m('ifs')}",
        "quote-escape": f"'; touch {m('quote-escape')}; '",
        "background": f"& touch {m('background')} &",
        "process-subst": f"<(touch {m('process-subst')})",
    }


def markers(marker_dir: Path) -> List[Path]:
    return sorted(marker_dir.glob("pwned-*"))


@pytest.fixture
def marker_dir(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def containers() -> Iterator[List[str]]:
    """Names of containers a test creates; all removed afterwards."""
    names: List[str] = []
    yield names
    for name in names:
        run(["docker", "rm", "-f", name], check=False)


def quoted_run_args(values: Dict[str, str]) -> str:
    """run_args as a careful meta-data author writes them: each value quoted once."""
    words: List[str] = []
    for index, value in enumerate(values.values()):
        words += ["-e", f"P{index}={value}", "--label", f"p{index}={value}"]
    return shlex.join(words)


def test_metacharacters_parse_into_literal_argv_entries(marker_dir: Path) -> None:
    values = payloads(marker_dir)
    meta = parse_metadata_json(
        json.dumps({"containers": [f"app@{DIGEST}"], "run_args": quoted_run_args(values)})
    )
    (planned,) = meta.plan()
    expected: List[str] = []
    for index, value in enumerate(values.values()):
        expected += [f"--env=P{index}={value}", f"--label=p{index}={value}"]
    assert list(planned.args) == expected
    assert markers(marker_dir) == []


def test_unquoted_metacharacters_become_separate_literal_words(marker_dir: Path) -> None:
    marker = marker_dir / "pwned-unquoted"
    run_args = f"-e A=1; touch {marker} && echo $(id) `id` | cat > {marker}"
    # shlex makes literal words; the first word that is no option would be the
    # engine's image: refused before anything runs
    with pytest.raises(MetadataError, match="positional argument 'touch'"):
        parse_metadata_json(json.dumps({"containers": [f"app@{DIGEST}"], "run_args": run_args}))
    assert markers(marker_dir) == []


@pytest.mark.parametrize(
    "reference",
    [
        "127.0.0.1:5000/app;touch /tmp/pwned@" + DIGEST,
        "$(touch /tmp/pwned)/app@" + DIGEST,
        "app`touch /tmp/pwned`@" + DIGEST,
        "app|touch@" + DIGEST,
        "app&&touch@" + DIGEST,
        "app\ntouch@" + DIGEST,
        "app@" + DIGEST + "\n",
        "app@" + DIGEST + ";touch /tmp/pwned",
        "app @" + DIGEST,
        "app:$(id)@" + DIGEST,
        "app:v1;id@" + DIGEST,
        "app>x@" + DIGEST,
        "--privileged@" + DIGEST,
        "-v/:/h/app@" + DIGEST,
    ],
)
def test_image_names_with_metacharacters_are_refused(reference: str) -> None:
    assert PINNED_REF_RE.fullmatch(reference) is None
    with pytest.raises(MetadataError, match="not pinned by digest"):
        parse_metadata_json(json.dumps({"containers": [reference]}))


def test_real_engine_passes_payloads_literally_and_runs_nothing_on_the_host(
    image_factory: ImageFactory, marker_dir: Path, containers: List[str]
) -> None:
    image = image_factory.build(unique("hostile-inert"), cmd=["sleep", "3600"])
    values = payloads(marker_dir)
    name = unique("hostile-inert")
    meta = parse_metadata_json(
        json.dumps({"containers": [image], "run_args": quoted_run_args(values), "names": [name]})
    )
    (planned,) = meta.plan()
    containers.append(planned.name)
    # Exactly the module's engine calls: `docker create --name=N ARGS --label=... IMAGE`,
    # then `docker start`.
    engine = Engine()
    engine.start(engine.create(planned.name, planned.image, planned.args, {"hostile.test": "1"}))

    inspect = run(["docker", "inspect", "--format", "{{json .Config}}", planned.name]).stdout
    config = json.loads(inspect)
    for index, value in enumerate(values.values()):
        assert f"P{index}={value}" in config["Env"]
        assert config["Labels"][f"p{index}"] == value
    state = run(["docker", "inspect", "--format", "{{.State.Status}}", planned.name]).stdout
    assert state.strip() == "running"
    assert markers(marker_dir) == []


def test_real_engine_refuses_unquoted_metacharacters_without_a_shell(
    image_factory: ImageFactory, marker_dir: Path, containers: List[str]
) -> None:
    # Unquoted, the words after `;` are positional: docker takes ";" as the image
    # name and refuses it. The original module's shell would have run `touch`.
    image = image_factory.build(unique("hostile-unquoted"), cmd=["sleep", "3600"])
    name = unique("hostile-unquoted")
    marker = marker_dir / "pwned-unquoted"
    run_args = f"-e A=1 ; touch {marker} ; echo $(touch {marker}2) `touch {marker}3`"
    with pytest.raises(MetadataError, match="positional argument ';'"):
        parse_metadata_json(json.dumps({"containers": [image], "run_args": run_args}))
    # and had it reached the engine as words, the engine would refuse them too
    containers.append(name)
    with pytest.raises(EngineError) as info:
        Engine().create(name, image, shlex.split(run_args), {})
    assert "invalid reference format" in info.value.stderr
    assert markers(marker_dir) == []


def test_the_marker_check_would_see_a_shell(marker_dir: Path) -> None:
    # Control: the same payloads after `echo` in a real shell do create their
    # markers, so an empty marker directory above means no shell ran.
    values = payloads(marker_dir)
    for value in values.values():
        subprocess.run(["/bin/sh", "-c", f"echo {value}"], capture_output=True, timeout=30)
    created = {path.name.split("-", 2)[2] for path in markers(marker_dir)}
    expected = {"semicolon", "subshell", "backticks", "pipe", "and", "newline", "redirect"}
    assert expected <= created, created
