"""Docker credential helpers (credHelpers, credsStore), with helper programs of our own.

Each helper is a small Python script named `docker-credential-<name>` in a
private bin directory that is the whole PATH of the environment we pass, so
no helper installed on the machine (e.g. /usr/bin/docker-credential-gcloud)
can answer in its place. Every helper appends what it was given (argv, stdin)
to `<name>.calls` next to it. The last tests run docker-artifact-gen and the
client against a real docker-registry behind htpasswd auth.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry import RegistryClient
from mender_docker.registry.auth import (
    Credentials,
    configured_helper,
    load_credentials,
    server_address,
)
from tests.realstack import Registry, unique
from tests.registry.fake_registry import FakeRegistry
from tests.registry.fixtures import PASSWORD, USER
from tests.registry.ocipush import push_image

HUB = "https://index.docker.io/v1/"
NOT_FOUND = "credentials not found in native keychain"


# -- helpers of our own ------------------------------------------------------------


def make_helper(
    bin_dir: Path,
    name: str,
    answers: Optional[Mapping[str, Mapping[str, str]]] = None,
    *,
    raw: Optional[str] = None,
    status: int = 0,
    stderr: str = "",
    hang: bool = False,
) -> Path:
    """`docker-credential-<name>`: answers[server] as JSON, else "not found" (exit 1).

    `raw` replaces the answer with that stdout and `status` as exit status;
    `hang` makes it never answer (it records its pid first)."""
    bin_dir.mkdir(exist_ok=True)
    record = bin_dir / f"{name}.calls"
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"""#!{sys.executable}
import json, os, sys, time
data = sys.stdin.buffer.read()
with open({str(record)!r}, "a") as calls:
    calls.write(json.dumps({{"argv": sys.argv[1:], "stdin": data.decode("latin-1"),
                            "pid": os.getpid()}}) + "\\n")
if {hang!r}:
    time.sleep(3600)
sys.stderr.write({stderr!r})
raw, status, answers = {raw!r}, {status!r}, {dict(answers or {})!r}
if raw is not None:
    sys.stdout.write(raw)
    sys.exit(status)
server = data.decode()
if server not in answers:
    sys.stdout.write({NOT_FOUND!r} + "\\n")
    sys.exit(1)
sys.stdout.write(json.dumps(dict(answers[server], ServerURL=server)))
"""
    )
    script.chmod(0o755)
    return script


def calls(bin_dir: Path, name: str) -> List[Dict[str, Any]]:
    record = bin_dir / f"{name}.calls"
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def creds(user: str, secret: str) -> Dict[str, str]:
    return {"Username": user, "Secret": secret}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def environment(tmp_path: Path, config: Mapping[str, Any], bin_dir: Path) -> Dict[str, str]:
    """DOCKER_CONFIG holding `config`; PATH is only `bin_dir`."""
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(folder), "PATH": str(bin_dir), "HOME": str(tmp_path)}


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


# -- precedence ------------------------------------------------------------------------


def test_cred_helpers_beat_creds_store_beats_auths(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(bin_dir, "alpha", {"reg-a:5000": creds("alpha-user", "alpha-pw")})
    make_helper(
        bin_dir,
        "beta",
        {"reg-a:5000": creds("beta-a", "x"), "reg-b": creds("beta-user", "beta-pw")},
    )
    auths = {
        "reg-a:5000": {"auth": b64("auths-a:pw")},
        "reg-b": {"auth": b64("auths-b:pw")},
        "reg-c": {"auth": b64("auths-c:pw")},
    }
    env = environment(
        tmp_path,
        {"credHelpers": {"reg-a:5000": "alpha"}, "credsStore": "beta", "auths": auths},
        bin_dir,
    )
    alpha = Credentials("alpha-user", "alpha-pw")
    assert load_credentials("reg-a:5000", "reg-a:5000", env) == alpha
    assert [c["stdin"] for c in calls(bin_dir, "alpha")] == ["reg-a:5000"]
    assert calls(bin_dir, "beta") == []  # the per-registry helper is final

    assert load_credentials("reg-b", "reg-b", env) == Credentials("beta-user", "beta-pw")
    assert [c["stdin"] for c in calls(bin_dir, "alpha")] == ["reg-a:5000"]  # not asked
    assert [c["stdin"] for c in calls(bin_dir, "beta")] == ["reg-b"]

    # No credsStore: auths again.
    env = environment(tmp_path, {"credHelpers": {"reg-a:5000": "alpha"}, "auths": auths}, bin_dir)
    assert load_credentials("reg-b", "reg-b", env) == Credentials("auths-b", "pw")
    assert load_credentials("reg-a:5000", "reg-a:5000", env) == alpha


def test_an_empty_cred_helper_means_auths_even_with_a_store(tmp_path: Path, bin_dir: Path) -> None:
    """docker: credHelpers[host] == "" names no helper, so the file store (auths) answers."""
    make_helper(bin_dir, "beta", {"reg-c": creds("beta", "pw")})
    config = {
        "credHelpers": {"reg-c": ""},
        "credsStore": "beta",
        "auths": {"reg-c": {"auth": b64("auths-c:pw")}},
    }
    env = environment(tmp_path, config, bin_dir)
    assert load_credentials("reg-c", "reg-c", env) == Credentials("auths-c", "pw")
    assert calls(bin_dir, "beta") == []
    assert configured_helper("reg-c", env) is None
    assert configured_helper("reg-d", env) == "beta"


def test_store_without_credentials_is_anonymous_not_auths(tmp_path: Path, bin_dir: Path) -> None:
    """As docker's native store: "not found" from the helper is an empty answer, and
    auths (which docker writes as `{}` next to a store) is not read."""
    make_helper(bin_dir, "beta", {})
    make_helper(bin_dir, "alpha", {})
    config = {
        "credHelpers": {"reg-a": "alpha"},
        "credsStore": "beta",
        "auths": {"reg-a": {"auth": b64("a:pw")}, "reg-b": {"auth": b64("b:pw")}},
    }
    env = environment(tmp_path, config, bin_dir)
    assert load_credentials("reg-b", "reg-b", env) is None
    assert [c["stdin"] for c in calls(bin_dir, "beta")] == ["reg-b"]
    # A per-registry helper without credentials does not fall back to the store either.
    assert load_credentials("reg-a", "reg-a", env) is None
    assert [c["stdin"] for c in calls(bin_dir, "beta")] == ["reg-b"]
    assert [c["stdin"] for c in calls(bin_dir, "alpha")] == ["reg-a"]


def test_empty_answer_is_anonymous(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(bin_dir, "empty", raw='{"ServerURL": "reg", "Username": "", "Secret": ""}')
    env = environment(tmp_path, {"credsStore": "empty"}, bin_dir)
    assert load_credentials("reg", "reg", env) is None


# -- the protocol ------------------------------------------------------------------------


def test_helper_gets_exactly_the_server_on_stdin_and_get_as_argument(
    tmp_path: Path, bin_dir: Path
) -> None:
    make_helper(bin_dir, "rec", {"reg.example:5000": creds("u", "p")})
    env = environment(tmp_path, {"credsStore": "rec"}, bin_dir)
    assert load_credentials("reg.example:5000", "reg.example:5000", env) == Credentials("u", "p")
    (call,) = calls(bin_dir, "rec")
    assert call["argv"] == ["get"]
    assert call["stdin"] == "reg.example:5000"  # no scheme, no newline


def test_docker_hub_is_asked_as_the_index_url(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(bin_dir, "hub", {HUB: creds("hubuser", "hubpw")})
    make_helper(bin_dir, "store", {})
    # credHelpers keys are matched exactly, as docker does: "docker.io" is not Hub's key.
    config = {"credHelpers": {HUB: "hub", "docker.io": "store"}, "credsStore": "store"}
    env = environment(tmp_path, config, bin_dir)
    for domain in ("docker.io", "index.docker.io"):
        assert server_address(domain) == HUB
        assert load_credentials("registry-1.docker.io", domain, env) == Credentials(
            "hubuser", "hubpw"
        )
    assert [c["stdin"] for c in calls(bin_dir, "hub")] == [HUB, HUB]
    assert calls(bin_dir, "store") == []
    # Through the store, Hub is asked under the same key.
    env = environment(tmp_path, {"credsStore": "hub"}, bin_dir)
    assert load_credentials("registry-1.docker.io", "docker.io", env) == Credentials(
        "hubuser", "hubpw"
    )
    assert calls(bin_dir, "hub")[-1]["stdin"] == HUB


def test_path_and_config_from_the_process_environment(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_helper(bin_dir, "envpath", {"reg": creds("from-env", "pw")})
    env = environment(tmp_path, {"credsStore": "envpath"}, bin_dir)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
    assert load_credentials("reg", "reg") == Credentials("from-env", "pw")


# -- failures: one line naming the helper and the registry ---------------------------------


def _error(env: Mapping[str, str], registry: str = "reg.example", **kw: Any) -> str:
    with pytest.raises(RegistryError) as caught:
        load_credentials(registry, registry, env, **kw)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_helper_failure_is_one_line_with_its_output(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(
        bin_dir, "broken", raw="error getting token:\n  expired\n", status=3, stderr="see log\n"
    )
    env = environment(tmp_path, {"credsStore": "broken"}, bin_dir)
    message = _error(env)
    assert "docker-credential-broken" in message
    assert "registry reg.example" in message
    assert "exit status 3" in message
    assert "error getting token: expired see log" in message


def test_missing_helper_is_named(tmp_path: Path, bin_dir: Path) -> None:
    env = environment(tmp_path, {"credHelpers": {"reg.example": "nothere"}}, bin_dir)
    message = _error(env)
    assert "docker-credential-nothere not found on PATH" in message
    assert "registry reg.example" in message


def test_a_non_executable_helper_is_not_run(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(bin_dir, "noexec", {"reg.example": creds("u", "p")}).chmod(0o644)
    env = environment(tmp_path, {"credsStore": "noexec"}, bin_dir)
    assert "docker-credential-noexec not found on PATH" in _error(env)
    assert calls(bin_dir, "noexec") == []


@pytest.mark.parametrize(
    "raw, expect",
    [
        ("Username=u Secret=hunter2", "did not print a JSON object"),
        ('["u", "hunter2"]', "did not print a JSON object"),
        ("", "did not print a JSON object"),
        ('{"Username": "u", "Secret": 42}', "non-string Username or Secret"),
    ],
)
def test_malformed_answer(tmp_path: Path, bin_dir: Path, raw: str, expect: str) -> None:
    make_helper(bin_dir, "garbled", raw=raw)
    env = environment(tmp_path, {"credsStore": "garbled"}, bin_dir)
    message = _error(env)
    assert expect in message
    assert "docker-credential-garbled" in message and "reg.example" in message
    assert "hunter2" not in message  # what a helper printed on success may be a secret


def test_identity_token_is_refused_clearly(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(bin_dir, "idtok", {"reg.example": creds("<token>", "refresh-secret")})
    env = environment(tmp_path, {"credsStore": "idtok"}, bin_dir)
    message = _error(env)
    assert "identity token" in message and "not support" in message
    assert "docker-credential-idtok" in message
    assert "refresh-secret" not in message


def test_a_hung_helper_is_killed_at_the_timeout(tmp_path: Path, bin_dir: Path) -> None:
    make_helper(bin_dir, "hung", hang=True)
    env = environment(tmp_path, {"credsStore": "hung"}, bin_dir)
    message = _error(env, timeout=1)
    assert "docker-credential-hung get` did not answer within 1 s" in message
    (call,) = calls(bin_dir, "hung")
    with pytest.raises(ProcessLookupError):
        os.kill(call["pid"], 0)  # killed and reaped, not left behind


@pytest.mark.parametrize("name", ["../evil", "a/b"])
def test_a_helper_name_with_a_path_is_refused(tmp_path: Path, bin_dir: Path, name: str) -> None:
    env = environment(tmp_path, {"credsStore": name}, bin_dir)
    assert "is not a helper name" in _error(env)


@pytest.mark.parametrize(
    "config, expect",
    [
        ({"credsStore": 7}, "credsStore is not a string"),
        ({"credHelpers": ["x"]}, "credHelpers is not an object"),
        ({"credHelpers": {"reg.example": ["h"]}}, "credHelpers.reg.example is not a string"),
    ],
)
def test_bad_helper_settings_are_named(
    tmp_path: Path, bin_dir: Path, config: Dict[str, Any], expect: str
) -> None:
    assert expect in _error(environment(tmp_path, config, bin_dir))


# -- the client: helpers run only when asked, once per registry ------------------------------


def test_client_runs_the_helper_once_per_registry_and_only_on_401(
    tmp_path: Path, bin_dir: Path
) -> None:
    make_helper(bin_dir, "once", {"reg.example": creds("u", "p")})
    env = environment(tmp_path, {"credsStore": "once"}, bin_dir)
    fake = FakeRegistry(auth="bearer")
    first, _, _ = fake.add_image("team/one", "1", [10])
    second, _, _ = fake.add_image("team/two", "1", [10])
    client = RegistryClient(transport=fake, environ=env)
    assert client.resolve("reg.example/team/one:1").digest == first
    assert client.resolve("reg.example/team/two:1").digest == second
    assert [c["stdin"] for c in calls(bin_dir, "once")] == ["reg.example"]

    # A registry that asks for nothing never runs the helper, even a missing one.
    public = FakeRegistry()
    digest, _, _ = public.add_image("team/one", "1", [10])
    env = environment(tmp_path, {"credsStore": "missing"}, bin_dir)
    client = RegistryClient(transport=public, environ=env)
    assert client.resolve("reg.example/team/one:1").digest == digest


def test_client_hints_name_the_helper(tmp_path: Path, bin_dir: Path) -> None:
    fake = FakeRegistry(auth="basic")
    fake.add_image("team/app", "1", [10])
    make_helper(bin_dir, "none", {})
    env = environment(tmp_path, {"credsStore": "none"}, bin_dir)
    with pytest.raises(RegistryError) as caught:
        RegistryClient(transport=fake, environ=env).resolve("reg.example/team/app:1")
    assert "credential helper docker-credential-none has no credentials for it" in str(caught.value)
    make_helper(bin_dir, "wrong", {"reg.example": creds("u", "not-p")})
    env = environment(tmp_path, {"credsStore": "wrong"}, bin_dir)
    with pytest.raises(RegistryError) as caught:
        RegistryClient(transport=fake, environ=env).resolve("reg.example/team/app:1")
    assert "credentials from credential helper docker-credential-wrong were refused" in str(
        caught.value
    )
    assert len(calls(bin_dir, "wrong")) == 1


# -- end to end: docker-artifact-gen, a real registry, a helper as the only credentials ------


def _gen(args: List[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mender_docker.cli.gen", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
    )


def _real_env(tmp_path: Path, config: Mapping[str, Any], bin_dir: Path) -> Dict[str, str]:
    env = environment(tmp_path, config, bin_dir)
    return {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.real
def test_gen_with_credentials_only_from_a_creds_store(
    basic_registry: Registry, tmp_path: Path, bin_dir: Path
) -> None:
    from tests.gen.readback import read_back

    host = basic_registry.host
    repo = f"{unique('credhelper')}/app"
    auth = "Basic " + b64(f"{USER}:{PASSWORD}")
    image = push_image(host, repo, "v1", [{"f": b"credential helper"}], auth=auth)
    ref = f"{host}/{repo}:v1"
    make_helper(bin_dir, "teststore", {host: creds(USER, PASSWORD)})
    out = tmp_path / "helper.mender"
    args = ["-n", "helper-1", "-t", "dev", "-o", str(out), ref]

    # Without the helper configured: a clear one-line refusal, no artifact.
    proc = _gen(args, _real_env(tmp_path, {}, bin_dir))
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.strip().splitlines() == [
        f"docker-artifact-gen: error: registry {host} requires a login;"
        " no credentials for it in the Docker config (docker login)"
    ]
    assert not out.exists()
    assert calls(bin_dir, "teststore") == []

    # A store naming a helper that is not installed: named, one line.
    proc = _gen(args, _real_env(tmp_path, {"credsStore": "absent"}, bin_dir))
    assert proc.returncode == 1, proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert "docker-credential-absent not found on PATH" in line
    assert not out.exists()

    # Only the helper knows the password: the artifact is pinned to the pushed digest.
    proc = _gen(args, _real_env(tmp_path, {"credsStore": "teststore"}, bin_dir))
    assert proc.returncode == 0, proc.stderr
    assert f"Artifact {out} generated successfully" in proc.stdout
    got = read_back(out)
    assert got.meta is not None
    assert got.meta["containers"] == [f"{host}/{repo}@{image.digest}"]
    assert [c["stdin"] for c in calls(bin_dir, "teststore")] == [host]


@pytest.mark.real
def test_real_registry_refuses_a_helpers_wrong_password(
    basic_registry: Registry, tmp_path: Path, bin_dir: Path
) -> None:
    host = basic_registry.host
    repo = f"{unique('credhelper')}/app"
    push_image(host, repo, "v1", [{"f": b"x"}], auth="Basic " + b64(f"{USER}:{PASSWORD}"))
    make_helper(bin_dir, "stale", {host: creds(USER, "stale-password")})
    env = _real_env(tmp_path, {"credHelpers": {host: "stale"}}, bin_dir)
    with pytest.raises(RegistryError) as caught:
        RegistryClient(environ=env).resolve(f"{host}/{repo}:v1")
    assert f"registry {host} refused access" in str(caught.value)
    assert "credentials from credential helper docker-credential-stale were refused" in str(
        caught.value
    )
