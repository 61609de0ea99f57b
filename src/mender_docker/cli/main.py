"""`mender-docker`: the umbrella command. Each sub-command lives in its own module."""

from __future__ import annotations

import importlib
import sys
from typing import Dict, List, Optional, Tuple

# sub-command -> (module, one-line help); modules are imported only when used.
COMMANDS: Dict[str, Tuple[str, str]] = {
    "read": ("mender_docker.cli.read", "show what an artifact contains"),
    "validate": ("mender_docker.cli.validate", "verify checksums and, with -k, a signature"),
    "write": ("mender_docker.cli.write", "write a module-image, rootfs-image or bootstrap "
              "artifact (as mender-artifact write)"),
    "sign": ("mender_docker.cli.sign", "sign an existing artifact (as mender-artifact sign)"),
    "gen": ("mender_docker.cli.gen", "generate a docker artifact (same as docker-artifact-gen)"),
    "build-module": ("mender_docker.cli.module_tools", "write the update module as one file"),
    "install-module": ("mender_docker.cli.module_tools", "install the module on this device"),
    "status": ("mender_docker.cli.module_tools", "show what is deployed on this device"),
}


def usage() -> str:
    lines = ["usage: mender-docker COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<15} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name = args[0]
    if name not in COMMANDS:
        print(f"mender-docker: error: unknown command {name!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result: int = module.run(name, args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())
