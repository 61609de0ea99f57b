"""Anonymous volumes across an update: the new container inherits the old one's.

`docker compose up` recreates a service's container with the anonymous volumes
of the one it replaces (an image's `VOLUME`, `-v /path`), so a database keeps
its data; a plain `docker run` of the new release gets fresh empty ones. Here
the container the install replaces is the one holding the planned name: each
of its anonymous volumes is mounted into the new container at the same
destination (`--mount type=volume,source=<name>,target=<dest>` after the
artifact's arguments), unless the new arguments mount something there
themselves. What is inherited is journalled (`Deployment.inherited`) before the
container is created; a rollback removes the new container and restarts the old
one, which never lost its mounts. Named volumes are the arguments' business and
never touched. Removing the volumes nobody uses any more is deployment.py's
(`remove_unused_volumes`).
"""

from __future__ import annotations

import posixpath
from typing import Dict, List, Mapping, Optional, Sequence, Set

from mender_docker.module.engine import ContainerInfo
from mender_docker.module.log import log, short
from mender_docker.runargs import RunArgs
from mender_docker.spec import PlannedContainer

# The options that put something at a path in the container (both engines).
MOUNT_OPTIONS = ("volume", "mount", "tmpfs")


def _path(value: str) -> str:
    value = value.strip()
    return posixpath.normpath(value) if value.startswith("/") else value


def mount_targets(run: RunArgs) -> Optional[Set[str]]:
    """The destinations the arguments mount a named volume, bind or tmpfs at (an
    anonymous volume there is what an inherited one replaces); None when they take
    another container's mounts (`--volumes-from`): where those land is not
    written here, so nothing is inherited."""
    if run.values("volumes-from"):
        return None
    targets: Set[str] = set()
    for use in run.uses:
        if use.option == "tmpfs":  # DST[:OPTS]
            targets.add(_path(use.value.split(":", 1)[0]))
        elif use.option in ("volume", "mount") and _anonymous_target(use.option, use.value) is None:
            target = _target(use.option, use.value)
            if target:
                targets.add(target)
    return targets


def _target(option: str, value: str) -> str:
    if option == "volume":  # SRC:DST[:OPTS] or DST (an anonymous volume)
        parts = value.split(":")
        return _path(parts[1] if len(parts) > 1 else parts[0])
    for item in value.split(","):  # --mount type=...,src=...,target=... (dst, destination)
        key, _, found = item.partition("=")
        if key.strip().lower() in ("target", "dst", "destination"):
            return _path(found.strip('"'))
    return ""


def _anonymous_target(option: str, value: str) -> Optional[str]:
    """Where `-v /path` or a `--mount` of a volume without a source mounts a fresh
    anonymous volume; None for any other mount."""
    if option == "volume":
        return _path(value) if ":" not in value and value.startswith("/") else None
    fields = {}
    for item in value.split(","):
        key, _, found = item.partition("=")
        fields[key.strip().lower()] = found.strip()
    if fields.get("type", "volume") != "volume" or fields.get("source") or fields.get("src"):
        return None
    return _target(option, value) or None


def named_sources(run: RunArgs) -> Set[str]:
    """The volume names the arguments write (`-v NAME:/dst`, `--mount src=NAME`)."""
    names: Set[str] = set()
    for use in run.uses:
        if use.option == "volume" and ":" in use.value:
            names.add(use.value.split(":", 1)[0])
        elif use.option == "mount":
            for item in use.value.split(","):
                key, _, value = item.partition("=")
                if key.strip().lower() in ("source", "src"):
                    names.add(value.strip())
    return names


def inheritance(
    plan: Sequence[PlannedContainer], holders: Mapping[str, ContainerInfo]
) -> List[Dict[str, str]]:
    """For each planned container, the anonymous volumes it takes over from the
    container now holding its name (`holders`: name -> that container), as the
    journal records them: {container, volume, destination, from}."""
    entries: List[Dict[str, str]] = []
    for item in plan:
        old = holders.get(item.name)
        if old is None:
            continue
        targets = mount_targets(item.run)
        anonymous = [v for v in old.volumes if v.anonymous]
        if targets is None:
            if anonymous:
                log(f"note: {item.name} uses --volumes-from: it inherits no anonymous volume")
            continue
        named = named_sources(item.run)
        for volume in anonymous:
            destination = _path(volume.destination)
            if destination in targets or volume.name in named:
                continue  # the new release mounts something else there
            if "," in destination or '"' in destination or not destination.startswith("/"):
                log(f"note: {item.name} cannot inherit the volume at {destination!r}")
                continue
            log(f"{item.name} inherits volume {short(volume.name)} at {destination}")
            entries.append(
                {
                    "container": item.name,
                    "volume": volume.name,
                    "destination": destination,
                    "from": old.id,
                }
            )
    return entries


def inherited_arguments(
    args: Sequence[str], entries: Sequence[Mapping[str, str]], name: str
) -> List[str]:
    """The create arguments (`--option=value` each) of the container `name`: an
    anonymous volume the arguments ask for where it inherits one is left out (the
    engine refuses two mounts at one path), the inherited ones are appended."""
    mine = [e for e in entries if e["container"] == name]
    taken = {e["destination"] for e in mine}
    kept = []
    for arg in args:
        option, _, value = arg.partition("=")
        if option in ("--volume", "--mount") and _anonymous_target(option[2:], value) in taken:
            continue
        kept.append(arg)
    return kept + [
        f"--mount=type=volume,source={e['volume']},target={e['destination']}" for e in mine
    ]
