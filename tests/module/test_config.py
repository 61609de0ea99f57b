"""The configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mender_docker.module.config import Config, load_config, parse_config
from mender_docker.module.errors import ConfigError


def test_defaults_and_overrides() -> None:
    config = parse_config(
        "# comment\n\nengine = /usr/bin/podman\nscope = managed\nstop_timeout = 3\n"
        "keep_previous_images = yes\npull_retries = 0\nlabel_namespace = test.ns\n"
    )
    assert config.engine == "/usr/bin/podman"
    assert config.scope == "managed"
    assert config.stop_timeout == 3.0
    assert config.keep_previous_images is True
    assert config.pull_retries == 0
    assert config.label("managed") == "test.ns.managed"
    assert config.health_window == Config().health_window == 5.0
    assert Config().health_timeout == 60.0 and Config().stop_timeout == 10.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scope = some", "scope must be one of"),
        ("stop_timout = 3", "unknown key 'stop_timout'"),
        ("health_timeout = soon", "must be a number"),
        ("health_window = -1", "must not be negative"),
        ("keep_previous_images = maybe", "true or false"),
        ("pull_retries = 1.5", "whole number"),
        ("just words", "expected 'key = value'"),
    ],
)
def test_bad_values_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text, "x.conf")
    assert str(info.value).startswith("x.conf:1:")


def test_missing_file_named_by_the_environment_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENDER_DOCKER_CONF", str(tmp_path / "nope.conf"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config()
    (tmp_path / "ok.conf").write_text(f"data_dir = {tmp_path}\n")
    monkeypatch.setenv("MENDER_DOCKER_CONF", str(tmp_path / "ok.conf"))
    assert load_config().journal_dir == str(tmp_path)


def test_policy_keys_are_validated_when_the_file_is_read() -> None:
    config = parse_config("deny_run_args = dangerous, --cap-add\nallowed_registries = r.io:5000")
    assert config.policy_settings() == {
        "deny_run_args": "dangerous, --cap-add",
        "allowed_registries": "r.io:5000",
    }
    with pytest.raises(ConfigError, match="^x.conf: deny_run_args"):
        parse_config("deny_run_args = bind=relative/path", "x.conf")
