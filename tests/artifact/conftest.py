"""Fixtures of the artifact tests: one set of real openssl keys per session."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from tests.artifact.helpers import make_keys


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def interop_keys(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """RSA 2048/3072/4096 and ECDSA P-256 keys in PKCS#1/SEC1 and PKCS#8 forms, plus
    Ed25519 (tests/artifact/interop_corpus.py)."""
    from tests.artifact.interop_corpus import make_interop_keys

    return make_interop_keys(tmp_path_factory.mktemp("interop-keys"))
