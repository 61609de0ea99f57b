"""Docker credential helpers: `docker-credential-<name> get`, as docker runs them.

The protocol (github.com/docker/docker-credential-helpers): the helper is run
with the single argument `get` and the server address on stdin (no newline);
it answers on stdout with JSON `{"ServerURL": ..., "Username": ..., "Secret":
...}` and exit status 0. Exit status non-zero with `credentials not found in
native keychain` on stdout means "no credentials for that server": docker then
goes on anonymously, and so do we (None). A Username of `<token>` means Secret
is an identity token (an OAuth2 refresh token): we do not speak that flow and
say so in one line rather than try anonymous access.

Unlike docker we bound the helper's run time (`HELPER_TIMEOUT`, 60 s) and
capture its stderr into the error message instead of passing it through. Every
failure is one `RegistryError` line naming the helper and the registry; what a
successful helper printed is never repeated (it holds the secret).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping, Optional

from mender_docker.errors import RegistryError

HELPER_TIMEOUT = 60.0  # seconds; docker has no limit, a hung helper would hang gen
PREFIX = "docker-credential-"
NOT_FOUND = "credentials not found in native keychain"
IDENTITY_TOKEN_USER = "<token>"
_SHOWN_OUTPUT = 300  # characters of a failed helper's output put in the error


@dataclass(frozen=True)
class HelperAnswer:
    username: str
    secret: str


def program_name(helper: str) -> str:
    return PREFIX + helper


def get_credentials(
    helper: str,
    server: str,
    registry: str,
    environ: Optional[Mapping[str, str]] = None,
    timeout: float = HELPER_TIMEOUT,
) -> Optional[HelperAnswer]:
    """Ask `docker-credential-<helper>` for `server`'s credentials; None if it has none.

    `server` is what goes on stdin (docker's key: host[:port], or
    https://index.docker.io/v1/ for Docker Hub); `registry` is only for messages.
    `environ` is the helper's environment and its PATH is where it is looked for.
    """
    env = dict(os.environ if environ is None else environ)
    program = program_name(helper)
    where = f"credential helper {program} (for registry {registry})"
    if not helper or "/" in helper or os.sep in helper or helper in (".", ".."):
        raise RegistryError(f"{where}: {helper!r} is not a helper name")
    path = shutil.which(program, path=env.get("PATH", os.defpath))
    if path is None:
        raise RegistryError(
            f"registry {registry}: credential helper {program} not found on PATH"
            " (named by credsStore/credHelpers in the Docker config)"
        )
    try:
        proc = subprocess.run(
            [path, "get"],  # an argument list: no shell sees the name
            input=server.encode("utf-8"),
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"{where}: `{program} get` did not answer within {timeout:g} s (killed)"
        ) from None
    except OSError as exc:
        raise RegistryError(f"{where}: cannot run {path}: {exc.strerror or exc}") from None
    stdout = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        if stdout.strip() == NOT_FOUND:
            return None
        status = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exit status {proc.returncode}"
        )
        said = _one_line(stdout + " " + proc.stderr.decode("utf-8", errors="replace"))
        raise RegistryError(
            f"{where}: `{program} get` failed ({status})" + (f": {said}" if said else "")
        )
    return _parse_answer(proc.stdout, where, program)


def _parse_answer(out: bytes, where: str, program: str) -> Optional[HelperAnswer]:
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RegistryError(f"{where}: `{program} get` did not print a JSON object")
    username, secret = answer.get("Username", ""), answer.get("Secret", "")
    if not isinstance(username, str) or not isinstance(secret, str):
        raise RegistryError(f"{where}: `{program} get` printed a non-string Username or Secret")
    if username == IDENTITY_TOKEN_USER:
        raise RegistryError(
            f"{where}: the helper holds an identity token (Username {IDENTITY_TOKEN_USER}),"
            " which mender-docker does not support; store a username and password"
            " (or access token) for this registry instead"
        )
    if not username and not secret:
        return None
    return HelperAnswer(username, secret)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > _SHOWN_OUTPUT:
        line = line[: _SHOWN_OUTPUT - 3] + "..."
    return line
