"""A `cp` in front of the real one that SIGKILLs the module in the middle of a copy.

The volume snapshot tests put it first on the module's PATH as `cp`. It reads
`cp.json` next to itself: real (the real cp), kill ("snapshot", "restore" or ""),
marker (a file it writes once it killed). A snapshot copy writes to
`<volume>.partial`; a restore copies from the snapshots directory. When armed
for that kind of copy, it copies the first entry only, then kills its parent
(the module) as a power cut would. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "cp.json"), encoding="utf-8") as handle:
        control = json.load(handle)
    args = sys.argv[1:]
    source, target = (args[-2], args[-1]) if len(args) >= 2 else ("", "")
    kind = ""
    if target.endswith(".partial"):
        kind = "snapshot"
    elif "/snapshots/" in source:
        kind = "restore"
    if kind and kind == control.get("kill") and not os.path.exists(control["marker"]):
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(source))[:1]:
            subprocess.call([control["real"], "-a", os.path.join(source, name), target])
        with open(control["marker"], "w", encoding="utf-8") as marker:
            marker.write(kind)
        os.kill(os.getppid(), signal.SIGKILL)
        return 137
    os.execv(control["real"], [control["real"], *args])
    return 127


if __name__ == "__main__":
    sys.exit(main())
