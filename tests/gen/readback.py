"""What the reference tool, `mender-artifact read`, reports about an artifact."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests.realstack import require, run


@dataclass
class ReadBack:
    name: str
    devices: str
    signature: str
    provides_group: str
    depends_artifacts: str
    depends_groups: str
    scripts: List[str]
    type: str
    provides: Dict[str, str]
    depends: Dict[str, str]
    clears: List[str]
    meta: Optional[Dict[str, Any]]

    def comparable(self) -> Dict[str, Any]:
        """Everything but the signature line."""
        out = dict(vars(self))
        out.pop("signature")
        return out


def _field(text: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}:[ \t]*(.*)$", text, re.MULTILINE)
    assert match, f"no {label!r} in mender-artifact read output:\n{text}"
    return match.group(1).strip()


def _tab_block(lines: List[str], start: int) -> List[str]:
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        out.append(line[1:])
    return out


def read_back(path: Path, key: Optional[Path] = None) -> ReadBack:
    require("mender-artifact")
    argv = ["mender-artifact", "read", "--no-progress", str(path)]
    if key is not None:
        argv[2:2] = ["-k", str(key)]
    text = run(argv).stdout
    lines = text.splitlines()

    def block(label: str) -> List[str]:
        for index, line in enumerate(lines):
            if line.strip() == f"{label}:":
                return _tab_block(lines, index)
        return []

    def pairs(label: str) -> Dict[str, str]:
        return dict(item.split(": ", 1) for item in block(label))

    scripts_at = next(i for i, line in enumerate(lines) if line.strip() == "State scripts:")
    scripts = []
    for line in lines[scripts_at + 1 :]:
        if not line.strip() or line.startswith("Updates"):
            break
        scripts.append(line.strip())
    clears = _field(text, "Clears Provides") if "Clears Provides:" in text else "[]"
    meta_lines = block("Metadata")
    return ReadBack(
        name=_field(text, "Name"),
        devices=_field(text, "Compatible devices"),
        signature=_field(text, "Signature"),
        provides_group=_field(text, "Provides group"),
        depends_artifacts=_field(text, "Depends on one of artifact(s)"),
        depends_groups=_field(text, "Depends on one of group(s)"),
        scripts=scripts,
        type=_field(text, "Type"),
        provides=pairs("Provides"),
        depends=pairs("Depends"),
        clears=json.loads(clears),
        meta=json.loads("\n".join(meta_lines)) if meta_lines else None,
    )
