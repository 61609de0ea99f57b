"""What every command shares: errors become one line on stderr and exit 1."""

from __future__ import annotations

import sys
from typing import Callable, List, Optional

from mender_docker.errors import MenderDockerError
from mender_docker.spec import MetadataError

Command = Callable[[List[str]], int]


def run_command(command: Command, argv: Optional[List[str]], prog: str) -> int:
    """Run `command(argv)`; report any expected failure as `prog: error: ...`."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return command(args)
    except (MenderDockerError, MetadataError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{prog}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
