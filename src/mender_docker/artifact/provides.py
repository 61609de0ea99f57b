"""mender-artifact's rules for the type-info provides and clears it adds by default. No I/O.

Checked against mender-artifact 3.9/4.0 (cli/write.go) and their output:
- software version key `<filesystem>.<name>.version` = the software version; filesystem
  defaults to `rootfs-image`, name to the payload type for a module-image and to nothing
  for a rootfs-image (`rootfs-image.version`), version to the artifact name; none at all
  with --no-default-software-version unless a version is given; none for a bootstrap;
- default clears entry `<filesystem>.<name>.*` (`rootfs-image.*` for a plain rootfs-image,
  after `artifact_group` and `rootfs_image_checksum`), after the given ones and not twice;
  none with --no-default-clears-provides or --no-default-software-version, or for a bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

KINDS = ("module-image", "rootfs-image", "bootstrap-artifact")


@dataclass
class SoftwareOptions:
    """The options of `mender-artifact write <kind>` that shape provides and clears."""

    kind: str
    artifact_name: str
    payload_type: Optional[str] = None  # module-image only
    software_name: Optional[str] = None
    software_version: Optional[str] = None
    software_filesystem: Optional[str] = None
    no_default_software_version: bool = False
    no_default_clears_provides: bool = False
    provides: Sequence[Tuple[str, str]] = ()  # -p KEY:VALUE, in command-line order
    clears_provides: Sequence[str] = ()
    # -p keys that win over the software version (mender-artifact: a -p given after the
    # last --software-* option, or any -p when no --software-* option was given).
    provides_win: Set[str] = field(default_factory=set)


def software_provides(options: SoftwareOptions) -> Dict[str, str]:
    """type-info artifact_provides: the -p values plus the software version."""
    provides = dict(options.provides)
    if options.kind == "bootstrap-artifact":
        return provides
    name = options.software_name or ""
    version = options.software_version or ""
    if not options.no_default_software_version:
        if not name and options.kind == "module-image":
            name = options.payload_type or ""
        version = version or options.artifact_name
    key = (options.software_filesystem or "rootfs-image") + (f".{name}" if name else "")
    key += ".version"
    if version and (key not in provides or key not in options.provides_win):
        provides[key] = version
    return provides


def default_clears(options: SoftwareOptions) -> List[str]:
    """type-info clears_artifact_provides: the given entries plus the default ones."""
    clears = list(options.clears_provides)
    if (options.no_default_clears_provides or options.no_default_software_version
            or options.kind == "bootstrap-artifact"):
        return clears
    filesystem = options.software_filesystem or "rootfs-image"
    if options.software_name:
        name = options.software_name + "."
    elif options.kind == "module-image":
        name = (options.payload_type or "") + "."
    else:
        name = ""
        if filesystem == "rootfs-image":
            clears += ["artifact_group", "rootfs_image_checksum"]
    default = f"{filesystem}.{name}*"
    if default not in clears:
        clears.append(default)
    return clears
