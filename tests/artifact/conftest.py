"""Fixtures of the artifact tests: one set of real openssl keys per session."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from tests.artifact.helpers import make_keys


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("keys"))
