"""The interop corpus's figures: how many cases, and on how many the verdicts of
mender-artifact 3.9, 4.0 and our reader agree, or differ on purpose (DELIBERATE).

    PYTHONPATH=$PWD/src:$PWD python3 scripts/interop_figures.py    (about 45 s)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import List

from tests.artifact.interop_corpus import (
    CASES,
    VERSIONS,
    CaseSpec,
    CorpusBuilder,
    make_interop_keys,
)
from tests.artifact.test_interop_corpus import Judge, deliberate


def summary(judge: Judge, label: str, cases: List[CaseSpec]) -> str:
    agree = {v: 0 for v in VERSIONS}
    on_purpose = {v: 0 for v in VERSIONS}
    unexplained = []
    all_three = 0
    for spec in cases:
        ours = judge.ours(spec.id)[0].accepted
        same = [judge.reference[spec.id, v].accepted == ours for v in VERSIONS]
        all_three += all(same)
        for version, equal in zip(VERSIONS, same):
            if equal:
                agree[version] += 1
            elif deliberate(spec.id, version):
                on_purpose[version] += 1
            else:
                unexplained.append(f"{spec.id}@{version}")
    per_version = "; ".join(f"{v}: {agree[v]} agree, {on_purpose[v]} deliberate"
                            for v in VERSIONS)
    return (f"{label}: {len(cases)} cases, all three verdicts agree on {all_three}; "
            f"{per_version}; unexplained: {', '.join(unexplained) or 'none'}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "keys").mkdir()
        judge = Judge(CorpusBuilder(root / "corpus", make_interop_keys(root / "keys")))
        parser = [c for c in CASES.values() if c.feature == "parser" or "-with-dsa" in c.id]
        print(summary(judge, "whole corpus", list(CASES.values())))
        print(summary(judge, "parser cases (issue 22)", parser))


if __name__ == "__main__":
    main()
