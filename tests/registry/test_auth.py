from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry.auth import (
    Credentials,
    docker_config_path,
    load_credentials,
    parse_challenge,
    parse_token,
    token_url,
)


def test_bearer_challenge_with_quoted_commas() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert dict(challenge.params) == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }


def test_basic_challenge_and_empty_header() -> None:
    challenge = parse_challenge('Basic realm="basic-realm"')
    assert challenge is not None and challenge.scheme == "basic"
    assert challenge.params["realm"] == "basic-realm"
    assert parse_challenge("") is None


def test_token_url_uses_challenge_scope_or_default() -> None:
    with_scope = parse_challenge(
        'Bearer realm="http://t/token",service="s",scope="repository:x:pull"'
    )
    assert with_scope is not None
    assert token_url(with_scope, "ignored") == (
        "http://t/token?service=s&scope=repository%3Ax%3Apull"
    )
    without = parse_challenge('Bearer realm="https://t/token?a=1"')
    assert without is not None
    assert token_url(without, "repository:y:pull") == (
        "https://t/token?a=1&scope=repository%3Ay%3Apull"
    )


def test_token_url_refuses_a_non_http_realm() -> None:
    challenge = parse_challenge('Bearer realm="file:///etc/passwd"')
    assert challenge is not None
    with pytest.raises(RegistryError, match="not an http"):
        token_url(challenge, "s")


@pytest.mark.parametrize("field", ["token", "access_token"])
def test_token_in_either_field(field: str) -> None:
    assert parse_token(json.dumps({field: "abc"}).encode(), "realm") == "abc"


def test_token_missing_is_an_error_naming_the_realm() -> None:
    with pytest.raises(RegistryError, match="http://realm"):
        parse_token(b"{}", "http://realm")
    with pytest.raises(RegistryError, match="without a token"):
        parse_token(b"<html>", "http://realm")


def _config(tmp_path: Path, auths: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps({"auths": auths}))
    return {"DOCKER_CONFIG": str(tmp_path)}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_docker_config(tmp_path: Path) -> None:
    env = _config(tmp_path, {"reg.example:5000": {"auth": _b64("me:pa:ss")}})
    assert load_credentials("reg.example:5000", "reg.example:5000", env) == Credentials(
        "me", "pa:ss"
    )
    assert load_credentials("other:5000", "other:5000", env) is None


def test_docker_hub_key_and_url_keys(tmp_path: Path) -> None:
    env = _config(
        tmp_path,
        {
            "https://index.docker.io/v1/": {"auth": _b64("hub:pw")},
            "https://reg.example": {"username": "u", "password": "p"},
        },
    )
    assert load_credentials("registry-1.docker.io", "docker.io", env) == Credentials("hub", "pw")
    assert load_credentials("reg.example", "reg.example", env) == Credentials("u", "p")


def test_missing_config_means_anonymous(tmp_path: Path) -> None:
    assert load_credentials("x", "x", {"DOCKER_CONFIG": str(tmp_path / "none")}) is None


def test_broken_auth_entry_is_named(tmp_path: Path) -> None:
    env = _config(tmp_path, {"reg": {"auth": _b64("no-colon")}})
    with pytest.raises(RegistryError, match="auths.reg.auth"):
        load_credentials("reg", "reg", env)


def test_config_path_default_is_home(tmp_path: Path) -> None:
    assert docker_config_path({"HOME": str(tmp_path)}) == tmp_path / ".docker" / "config.json"
    assert docker_config_path({"DOCKER_CONFIG": "/c", "HOME": "/h"}) == Path("/c/config.json")
