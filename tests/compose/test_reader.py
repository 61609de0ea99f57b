"""Unit tests of the Compose reader: no compose tool, no engine (see test_differential.py
for the comparison with the real `docker compose config`)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

from mender_docker.compose import ComposeError, Project, load_project, normalize_project_name
from mender_docker.compose.interpolate import (
    DotenvError,
    InterpolationError,
    parse_dotenv,
    substitute,
)
from mender_docker.compose.loader import _REFUSED, parse_port_spec, parse_volume_spec
from mender_docker.compose.model import Port
from mender_docker.compose.shellwords import ShellwordsError, split
from mender_docker.compose.units import go_number, parse_duration, parse_ram
from mender_docker.compose.yamlload import Timestamp, YamlError, load_documents

ENV = {"HOME": "/home/tester"}


def load(
    tmp_path: Path,
    text: str,
    files: Optional[Dict[str, str]] = None,
    env: Optional[Dict[str, str]] = None,
    profiles: Sequence[str] = (),
    name: Optional[str] = None,
    dirname: str = "proj",
) -> Project:
    root = tmp_path / dirname
    root.mkdir(exist_ok=True)
    (root / "compose.yaml").write_text(textwrap.dedent(text))
    for fname, content in (files or {}).items():
        (root / fname).write_text(content)
    return load_project(str(root / "compose.yaml"), name, profiles, dict(ENV, **(env or {})))


def refuses(tmp_path: Path, text: str, *needles: str, **kw: object) -> str:
    with pytest.raises(ComposeError) as info:
        load(tmp_path, text, **kw)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --- interpolation -----------------------------------------------------------------------

VARS = {"SET": "s", "EMPTY": ""}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("$SET ${SET}", "s s"),
        ("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", "d d  d"),
        ("${SET:+a} ${EMPTY:+a} ${EMPTY+a} ${UNSET+a}", "a  a "),
        ("$$SET $$$SET $$", "$SET $s $"),
        ("${UNSET:-${ALSO:-${SET}}}", "s"),
        ("${UNSET:-{x}}", "{x}"),
        ("${SET}}", "s}"),
        ("$ 1 $1 $", "$ 1 $1 $"),
        ("${SET:?msg}${EMPTY?msg}", "s"),
        ("a${UNSET}b", "ab"),
    ],
)
def test_substitute(template: str, expected: str) -> None:
    assert substitute(template, VARS.get) == expected


@pytest.mark.parametrize(
    "template, message",
    [
        ("${UNSET:?set it please}", "required variable UNSET is missing a value: set it please"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${UNSET?${SET}!}", "missing a value: s!"),
        ("${not valid}", "invalid interpolation format"),
        ("${SET", "invalid interpolation format"),
    ],
)
def test_substitute_errors(template: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$")):
        substitute(template, VARS.get)


def test_dotenv_syntax() -> None:
    text = textwrap.dedent(
        """\
        # comment
        A=plain
        B = spaced # comment
        C="tab\\there \\"q\\" \\0101"
        D='literal $SET \\n'
        export E=exported
        F: colon
        G=${SET}-${A}
        H='multi
        line'
        INHERITED
        MISSING_INHERITED
        """
    )
    values = parse_dotenv(text, {"SET": "s", "INHERITED": "i"}.get)
    assert values == {
        "A": "plain", "B": "spaced", "C": 'tab\there "q" A', "D": "literal $SET \\n",
        "E": "exported", "F": "colon", "G": "s-plain", "H": "multi\nline", "INHERITED": "i",
    }


@pytest.mark.parametrize("text", ['A="unterminated\n', "BAD KEY=1\n", "A$=1\n"])
def test_dotenv_errors(text: str) -> None:
    with pytest.raises(DotenvError):
        parse_dotenv(text)


# --- YAML, units, words, ports, volumes -----------------------------------------------------


def test_yaml_reads_scalars_like_compose() -> None:
    (doc,) = load_documents(
        "a: [no, on, 'yes', 80:80, 0777, 0o17, 0x1F, 1_000, 1.5, .inf, ~, true, 08, 2024-01-31]"
    )
    assert doc["a"][:12] == [
        "no", "on", "yes", "80:80", 511, 15, 31, 1000, 1.5, float("inf"), None, True
    ]
    assert doc["a"][12] == 8.0
    assert isinstance(doc["a"][13], Timestamp)


def test_yaml_merge_keys_and_anchors() -> None:
    (doc,) = load_documents("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n")
    assert doc["c"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    "text", ["a: 1\na: 2\n", "1: x\n", "a: [\n", "? [a]\n: 1\n", "a: !!foo x\n"]
)
def test_yaml_errors(text: str) -> None:
    with pytest.raises(YamlError):
        load_documents(text)


def test_units() -> None:
    assert parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5
    assert parse_duration("1h0m0s") == 3600 and parse_duration("2d") == 172800
    for bad in ("10", "1x", "", "s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_ram("512m") == 512 * 1024**2 and parse_ram("1.5g") == 1536 * 1024**2
    assert parse_ram("1GiB") == 1024**3 and parse_ram("100") == 100 and parse_ram("2 k") == 2048
    for bad in ("1x", "m", "1kbb"):
        with pytest.raises(ValueError):
            parse_ram(bad)
    assert [go_number(v) for v in (1.5, 1e6, 1.0, 1.2e-6, 123456.0, True, 7)] == [
        "1.5", "1e+06", "1", "1.2e-06", "123456", "true", "7"
    ]


def test_shellwords() -> None:
    words = ["echo", "a b", "c d", "e f", "", "`x y`"]
    assert split("""echo "a b" 'c d' e\\ f "" `x y`""") == words
    assert split('sh -c "echo \\"$HOME\\""') == ["sh", "-c", 'echo "$HOME"']
    for bad in ("echo 'open", "a (b", "echo a\\"):
        with pytest.raises(ShellwordsError, match="invalid command line"):
            split(bad)
    with pytest.raises(ShellwordsError, match="silently drop"):
        split("echo a && echo b")


def test_port_specs() -> None:
    assert parse_port_spec("80") == [Port(80, None, None, "tcp")]
    assert parse_port_spec("127.0.0.1:8080:80/UDP") == [Port(80, "8080", "127.0.0.1", "udp")]
    assert parse_port_spec("8000-8001:80") == [Port(80, "8000-8001", None, "tcp")]
    assert parse_port_spec("9000-9001:9000-9001") == [
        Port(9000, "9000", None, "tcp"), Port(9001, "9001", None, "tcp")
    ]
    assert parse_port_spec("[::1]::53/udp") == [Port(53, None, "::1", "udp")]
    for bad in ("x", "70000", "1-2:3-5", "80/icmp", "1.2.3:80:80", ""):
        with pytest.raises(ValueError):
            parse_port_spec(bad)


def test_volume_specs() -> None:
    assert parse_volume_spec("data:/data:ro,nocopy") == {
        "source": "data", "target": "/data", "options": ["ro", "nocopy"]
    }
    assert parse_volume_spec("/anon") == {"source": "", "target": "/anon", "options": []}
    assert parse_volume_spec("${A:-x}:/y")["source"] == "${A:-x}"
    with pytest.raises(ValueError, match="too many colons"):
        parse_volume_spec("data:/b:ro:x")


# --- the loader ------------------------------------------------------------------------------


def test_two_service_app(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        """
        services:
          front:
            image: example/front:${TAG:-1}
            ports: ["8080:80"]
            depends_on: {api: {condition: service_healthy}}
          api:
            image: example/api
            volumes: [data:/var/lib/api, ./conf:/etc/api:ro]
            healthcheck: {test: curl -f localhost, interval: 5s}
        volumes:
          data:
        """,
        env={"TAG": "2"},
    )
    assert project.name == "proj"
    front, api = project.services
    assert front.image == "example/front:2" and front.ports == (Port(80, "8080", None, "tcp"),)
    assert front.depends_on[0].condition == "service_healthy" and front.depends_on[0].required
    assert [(m.type, m.source, m.target, m.read_only) for m in api.volumes] == [
        ("volume", "data", "/var/lib/api", False),
        ("bind", str(tmp_path / "proj" / "conf"), "/etc/api", True),
    ]
    assert api.healthcheck is not None
    assert api.healthcheck.test == ("CMD-SHELL", "curl -f localhost")
    assert [(n.key, n.name) for n in project.networks] == [("default", "proj_default")]
    assert [(v.key, v.name) for v in project.volumes] == [("data", "proj_data")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        front.image = "x"  # type: ignore[misc]


def test_project_name_precedence(tmp_path: Path) -> None:
    text = "name: From_File\nservices:\n  a: {image: busybox}\n"
    assert load(tmp_path, text, dirname="Some.Dir").name == "from_file"
    assert load(tmp_path, text, env={"COMPOSE_PROJECT_NAME": "env"}).name == "env"
    assert load(tmp_path, text, files={".env": "COMPOSE_PROJECT_NAME=dot\n"}).name == "dot"
    assert load(tmp_path, text, name="arg", env={"COMPOSE_PROJECT_NAME": "env"}).name == "arg"
    assert load(tmp_path, "services:\n  a: {image: b}\n", dirname="My.App_1").name == "myapp_1"
    refuses(tmp_path, text, "invalid project name", name="Not Valid")
    assert normalize_project_name("-_Ab.C d") == "abcd"


def test_environ_wins_over_dotenv(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        """
        services:
          a:
            image: busybox
            environment:
              - BOTH=${BOTH}
              - ONLY=${ONLY}
              - BARE
              - DOTBARE
        """,
        files={".env": "BOTH=dotenv\nONLY=dotenv-only\nDOTBARE=from-dot\nREF=${BOTH}\n"},
        env={"BOTH": "environ", "BARE": "bare"},
    )
    assert dict(project.services[0].environment) == {
        "BOTH": "environ", "ONLY": "dotenv-only", "BARE": "bare", "DOTBARE": "from-dot"
    }


def test_env_file_precedence(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        """
        services:
          a:
            image: busybox
            env_file: [first.env, {path: second.env}, {path: nope.env, required: false}]
            environment: {WINS: environment, UNSET_HERE: null}
        """,
        files={
            "first.env": "A=1\nWINS=first\nB=first\nUNSET_HERE=file\n",
            "second.env": "B=second\nC=${A}${WINS}\n",
        },
    )
    assert project.services[0].environment == (
        ("A", "1"), ("B", "second"), ("C", "1environment"), ("UNSET_HERE", None),
        ("WINS", "environment"),
    )
    refuses(tmp_path, "services:\n  a: {image: b, env_file: gone.env}\n", "gone.env not found")


def test_profiles(tmp_path: Path) -> None:
    text = """
        services:
          app: {image: a, depends_on: {tool: {condition: service_started, required: false}}}
          tool: {image: t, profiles: [tools], networks: [toolnet]}
          dev: {image: d, extends: x, profiles: [dev], env_file: missing.env}
        networks:
          toolnet:
        """
    project = load(tmp_path, text)
    assert [s.name for s in project.services] == ["app"]
    assert project.services[0].depends_on == ()
    assert [n.key for n in project.networks] == ["default"]
    project = load(tmp_path, text, profiles=["tools"])
    assert [s.name for s in project.services] == ["app", "tool"]
    assert [n.key for n in project.networks] == ["toolnet", "default"]  # declared, then implicit
    assert [s.name for s in load(tmp_path, text, env={"COMPOSE_PROFILES": "tools"}).services] == [
        "app", "tool"
    ]
    refuses(tmp_path, text, "service 'dev'", "extends", profiles=["dev"])
    refuses(
        tmp_path,
        "services:\n  a: {image: a, depends_on: [b]}\n  b: {image: b, profiles: [x]}\n",
        "depends on undefined service 'b'",
    )


@pytest.mark.parametrize("key", sorted(_REFUSED))
def test_refused_keys_name_the_service_and_key(tmp_path: Path, key: str) -> None:
    message = refuses(
        tmp_path, f"services:\n  web:\n    image: busybox\n    {key}: x\n", "service 'web'", key
    )
    assert "compose.yaml" in message


@pytest.mark.parametrize(
    "text, needles",
    [
        ("services:\n  a: {image: b, imagee: c}\n", ("service 'a'", "imagee", "unknown key")),
        ("services:\n  a: {command: x}\n", ("service 'a'", "image")),
        ("secrets: {}\nservices:\n  a: {image: b, secrets: [s]}\n", ("undefined secret",)),
        ("include: [x.yaml]\nservices:\n  a: {image: b}\n", ("include",)),
        (
            "services:\n  a: {image: b, volumes: [vol:/y:z]}\nvolumes: {vol: {}}\n",
            ("volumes[0]", "binds only"),
        ),
        ("services:\n  a: {image: b, volumes: [dd:/y]}\n", ("undefined volume 'dd'",)),
        ("services:\n  a: {image: b, scale: 2}\n", ("scale",)),
        ("services:\n  a: {image: b, restart: sometimes}\n", ("restart",)),
        ("services:\n  a: {image: b, command: 'a | b'}\n", ("command", "'|'")),
        ("services:\n  a: {image: b, ports: ['99999']}\n", ("ports[0]",)),
        ("services:\n  a: {image: b, mem_limit: 1.5}\n", ("mem_limit",)),
        ("services:\n  a: {image: b, depends_on: [a]}\n", ("itself",)),
        ("services:\n  a: {image: '${X:?X is needed}'}\n", ("services.a.image", "X is needed")),
        ("services: {}\n", ("no service",)),
        ("", ("empty compose file",)),
        ("a: 1\n---\nb: 2\n", ("several YAML documents",)),
        ("services:\n  a: {image: b, labels: {d: 2024-01-01}}\n", ("labels.d",)),
    ],
)
def test_errors_are_one_clear_line(tmp_path: Path, text: str, needles: Sequence[str]) -> None:
    refuses(tmp_path, text, *needles)


def test_networks_and_volumes(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        """
        services:
          a:
            image: b
            networks:
              back: {aliases: [db], ipv4_address: 10.5.0.2}
              ext:
            volumes: [named:/n, ~/cfg:/cfg]
          h: {image: b, network_mode: host}
          s: {image: b, network_mode: "service:a"}
        networks:
          back: {internal: true, ipam: {config: [{subnet: 10.5.0.0/16}]}}
          ext: {external: true}
          unused:
        volumes:
          named: {name: fixed}
          unused:
        """,
    )
    a, h, s = project.services
    assert [(n.name, n.aliases, n.ipv4_address) for n in a.networks] == [
        ("back", ("db",), "10.5.0.2"), ("ext", (), None)
    ]
    assert a.volumes[1].source == "/home/tester/cfg"
    assert h.networks == () and h.network_mode == "host"
    assert s.depends_on[0].service == "a" and s.depends_on[0].restart
    nets = {n.key: n for n in project.networks}
    assert set(nets) == {"back", "ext"} and nets["ext"].name == "ext" and nets["back"].internal
    assert nets["back"].ipam is not None and nets["back"].ipam.config[0].subnet == "10.5.0.0/16"
    assert [(v.key, v.name) for v in project.volumes] == [("named", "fixed")]


def test_extensions_and_version_are_ignored(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        """
        version: "3.9"
        x-base: &base {image: busybox, x-note: 1}
        services:
          a: *base
        """,
    )
    assert project.services[0].image == "busybox"


# --- several files, bounds ---------------------------------------------------------------


def test_later_files_merge_over_the_first(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "compose.yaml").write_text(
        "services:\n  a:\n    image: base\n    ports: ['8080:80']\n"
        "    command: [sleep, '1']\n    environment: [A=1, B=2]\n"
    )
    (root / "prod.yaml").write_text(
        "services:\n  a:\n    image: prod\n    command: !reset null\n"
        "    environment: {B: '3'}\n    ports: ['8080:80', '9090:90']\n"
    )
    project = load_project([str(root / "compose.yaml"), str(root / "prod.yaml")], environ=ENV)
    (service,) = project.services
    assert service.image == "prod"
    assert service.command is None
    assert service.environment == (("A", "1"), ("B", "3"))
    assert [(p.published, p.target) for p in service.ports] == [("8080", 80), ("9090", 90)]


def test_the_project_directory_holds_dotenv_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "where").mkdir()
    (tmp_path / "where" / ".env").write_text("TAG=7\n")
    (tmp_path / "files" / "compose.yaml").write_text(
        "services:\n  a:\n    image: 'x:${TAG}'\n    volumes: ['./conf:/conf']\n"
    )
    project = load_project(
        [str(tmp_path / "files" / "compose.yaml")], environ=ENV,
        project_directory=str(tmp_path / "where"),
    )
    assert project.name == "where"
    assert project.services[0].image == "x:7"
    assert project.services[0].volumes[0].source == str(tmp_path / "where" / "conf")


def test_an_alias_bomb_fails_with_one_line() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    with pytest.raises(YamlError, match="aliases are expanded"):
        load_documents("\n".join(lines) + "\n")


def test_a_huge_file_fails_before_it_is_parsed(tmp_path: Path) -> None:
    big = "services:\n  a:\n    image: x\n" + "# filler\n" * 1_200_000
    refuses(tmp_path, big, "larger than")
