"""The module's layout: the state handlers stand side by side over deployment.py, the
run-time imports among module/ files have no cycle, and the phase table is whole."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

import mender_docker.module
from mender_docker.module.deployment import FINAL, NEXT, UNFINISHED, Phase
from mender_docker.module.journal import Deployment
from tests.module.conftest import phase_change_problem

MODULE = Path(mender_docker.module.__file__).parent
PACKAGE = "mender_docker.module"
STATE_HANDLERS = ("download", "install", "rollback", "finish")


def imports_of(name: str, run_time_only: bool = False) -> Set[str]:
    """The module/ files `name`.py imports: anywhere in it (also in functions and under
    TYPE_CHECKING), or only those imported when it is imported."""
    tree = ast.parse((MODULE / f"{name}.py").read_text(), filename=f"{name}.py")
    nodes = _run_time_statements(tree.body) if run_time_only else ast.walk(tree)
    found: Set[str] = set()
    for node in nodes:
        found |= _targets(node)
    return found - {name}


def _run_time_statements(body: List[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements run on import: not in functions, classes or `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _run_time_statements(node.body)
            yield from _run_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _run_time_statements(block)
            for handler in node.handlers:
                yield from _run_time_statements(handler.body)
        elif isinstance(node, ast.With):
            yield from _run_time_statements(node.body)
        else:
            yield node


def _targets(node: ast.AST) -> Set[str]:
    """module/ files named by one import statement (absolute or relative)."""
    names: Set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith(PACKAGE + "."):
                names.add(alias.name[len(PACKAGE) + 1 :].split(".")[0])
    elif isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level == 1 and not module or module == PACKAGE:  # from . import x
            names.update(alias.name for alias in node.names)
        elif node.level == 1:  # from .x import y
            names.add(module.split(".")[0])
        elif module.startswith(PACKAGE + "."):
            names.add(module[len(PACKAGE) + 1 :].split(".")[0])
    return names


def all_files() -> List[str]:
    return sorted(p.stem for p in MODULE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def test_the_parser_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = {
        "from mender_docker.module.download import x": {"download"},
        "import mender_docker.module.rollback": {"rollback"},
        "from mender_docker.module import finish, install": {"finish", "install"},
        "from . import download": {"download"},
        "from .rollback import undo": {"rollback"},
        "from mender_docker.spec import loaded_tag": set(),
    }
    for code, expected in sample.items():
        assert _targets(ast.parse(code).body[0]) == expected, code


@pytest.mark.parametrize("handler", STATE_HANDLERS)
def test_state_handlers_never_import_each_other(handler: str) -> None:
    others = set(STATE_HANDLERS) - {handler}
    assert imports_of(handler) & others == set(), f"{handler}.py imports another state handler"


def test_state_handlers_share_deployment_py() -> None:
    for handler in STATE_HANDLERS:
        assert "deployment" in imports_of(handler), handler
    assert imports_of("deployment") & set(STATE_HANDLERS) == set()


def test_run_time_imports_have_no_cycle() -> None:
    graph: Dict[str, Set[str]] = {}
    for name in all_files():
        graph[name] = imports_of(name, run_time_only=True)
    assert "deployment" in graph["journal"], "the journal takes Phase from deployment.py"
    done: Set[str] = set()

    def visit(name: str, path: List[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join([*path, name])
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_the_phase_table_is_whole() -> None:
    assert set(NEXT) == set(Phase)
    assert all(not NEXT[phase] for phase in FINAL), "nothing follows a final phase"
    reachable = {Phase.DOWNLOADING}
    while True:
        more = {after for phase in reachable for after in NEXT[phase]} - reachable
        if not more:
            break
        reachable |= more
    assert reachable == set(Phase)
    for phase in UNFINISHED:
        assert Phase.ROLLING_BACK in NEXT[phase] or phase == Phase.ROLLING_BACK


def test_the_phase_check_refuses_what_the_table_does_not_list() -> None:
    def at(phase: Phase, deployment_id: str = "d1") -> Deployment:
        return Deployment(id=deployment_id, artifact="a", phase=phase)

    assert phase_change_problem(None, at(Phase.DOWNLOADING)) == ""
    assert phase_change_problem(at(Phase.DOWNLOADED), at(Phase.INSTALLING)) == ""
    assert phase_change_problem(at(Phase.INSTALLING), at(Phase.INSTALLING)) == ""
    assert phase_change_problem(at(Phase.DOWNLOADED), at(Phase.COMMITTED)) != ""
    assert phase_change_problem(at(Phase.FAILED), at(Phase.ROLLING_BACK)) != ""
    assert phase_change_problem(at(Phase.CLEANED), at(Phase.DOWNLOADING, "d2")) == ""
    assert phase_change_problem(at(Phase.INSTALLED), at(Phase.DOWNLOADING, "d2")) != ""
    assert phase_change_problem(None, at(Phase.INSTALLING)) != ""
