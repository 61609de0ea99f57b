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
        ("health_window = -1", "must be from 0 to 86400 seconds"),
        ("keep_previous_images = maybe", "true or false"),
        ("pull_retries = 1.5", "whole number"),
        ("just words", "expected 'key = value'"),
        # issue 10 item 14: every number and string is bounded
        ("command_timeout = inf", "must be from 1 to 86400 seconds"),
        ("command_timeout = nan", "must be from 1 to 86400 seconds"),
        ("command_timeout = 0", "must be from 1 to 86400 seconds"),
        ("stop_timeout = " + "9" * 400, "must be from 0 to 3600 seconds"),
        ("stop_timeout = 3e6", "must be from 0 to 3600 seconds"),
        ("health_timeout = 1e400", "must be from 0 to 86400 seconds"),
        ("pull_retries = 101", "from 0 to 100"),
        ("pull_retries = \u0665", "whole number"),  # an Arabic-Indic digit: isdigit() is True
        ("label_namespace = a/b", "label_namespace must be"),
        ("label_namespace = " + "a" * 101, "label_namespace must be"),
        ("data_dir = relative/dir", "absolute path"),
        ("deny_run_args = " + "x" * 70000, "longer than"),
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
