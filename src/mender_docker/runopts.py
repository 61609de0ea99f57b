"""docker/podman `run`/`create` options as their flag parser (spf13/pflag) sees them.

Read from the flag definitions (not from --help, which omits hidden flags) in
docker/cli ``cli/command/container/{opts,run,create}.go`` plus the helpers they call,
every tag v20.10.0 .. v29.7.2 and master; and containers/podman
``cmd/podman/common/{create,netflags}.go``, ``cmd/podman/containers/{run,create}.go``,
``cmd/podman/utils/alias.go`` and the persistent flags of ``cmd/podman/root.go``, every
tag v4.0.0 .. v5.8.2 (main, 6.0-dev, has the same run/create flags). pflag v1.0.5 ..
v1.0.10. Checked against ``--help`` of the docker 28.2 CLI and podman 4.3.1, and
by test invocations for the hidden and alias flags.

Each option is the union over those versions and over ``run`` and ``create``;
comments give the versions and commands where an option is missing.
No option is a bool in one engine and a value in the other, none changed kind
between podman 4 and 5, and no shorthand differs between engines, so no name is
listed twice. Neither engine sets a NoOptDefVal other than "true", so no entry is
"optional" (the kind is kept for the parser).

Podman: the root command's persistent flags (``--log-level``, ``--root``,
``--runtime``, ``--storage-opt``, ...) are inherited by ``podman run``/``create``
and accepted after the subcommand; they are listed, marked "podman global". Docker
has no such inheritance: its global flags go before the subcommand.
Both commands call ``SetInterspersed(false)``: the first positional argument (the
image) ends option parsing.
"""

from __future__ import annotations

from typing import Dict, Tuple

# kind: "bool"  -> pflag NoOptDefVal "true" (bare flag means true; `--x=false` allowed;
#                  `--x false` makes "false" a positional)
#       "value" -> needs a value: `--x=v`, `--x v` (next token taken whatever it is), `-xv`,
#                  `-x v`, `-x=v`
#       "optional" -> NoOptDefVal set to something other than "true": bare flag takes the
#                  default, only `--x=v` sets a value
# engines: "dp" both, "d" docker only, "p" podman only
# Comments: "podman global" = podman root persistent flag; "not remote" = absent from
# podman-remote; "run only" = not accepted by `create`.
OPTIONS: Tuple[Tuple[str, str, str, str, str], ...] = (
    # (long name, shorthand letter or "", kind, engines, NoOptDefVal for "optional" else "")
    ("add-host", "", "value", "dp", ""),
    ("annotation", "", "value", "dp", ""),  # docker >= 24.0 (API 1.43)
    ("arch", "", "value", "p", ""),
    ("attach", "a", "value", "dp", ""),
    ("authfile", "", "value", "p", ""),
    ("blkio-weight", "", "value", "dp", ""),
    ("blkio-weight-device", "", "value", "dp", ""),
    ("cap-add", "", "value", "dp", ""),
    ("cap-drop", "", "value", "dp", ""),
    ("cdi-spec-dir", "", "value", "p", ""),  # podman global, not remote, >= 5.5
    ("cert-dir", "", "value", "p", ""),  # podman >= 5.7; not in podman-remote
    ("cgroup-conf", "", "value", "p", ""),
    ("cgroup-manager", "", "value", "p", ""),  # podman global, not remote
    ("cgroup-parent", "", "value", "dp", ""),
    ("cgroupns", "", "value", "dp", ""),
    ("cgroups", "", "value", "p", ""),
    ("chrootdirs", "", "value", "p", ""),  # podman >= 4.1
    ("cidfile", "", "value", "dp", ""),
    ("conmon", "", "value", "p", ""),  # podman global, not remote
    ("conmon-pidfile", "", "value", "p", ""),
    # cpu-count: docker: Windows-only, hidden; parsed, then refused for Linux daemons
    ("cpu-count", "", "value", "d", ""),
    # cpu-percent: docker: Windows-only, hidden; parsed, then refused for Linux daemons
    ("cpu-percent", "", "value", "d", ""),
    ("cpu-period", "", "value", "dp", ""),
    ("cpu-profile", "", "value", "p", ""),  # podman global, not remote, hidden
    ("cpu-quota", "", "value", "dp", ""),
    ("cpu-rt-period", "", "value", "dp", ""),
    ("cpu-rt-runtime", "", "value", "dp", ""),
    ("cpu-shares", "c", "value", "dp", ""),  # podman: -c only since 4.2
    ("cpus", "", "value", "dp", ""),
    ("cpuset-cpus", "", "value", "dp", ""),
    ("cpuset-mems", "", "value", "dp", ""),
    ("creds", "", "value", "p", ""),  # podman >= 5.7
    # db-backend: podman global, not remote, >= 4.5, hidden, gone in 6.0-dev
    ("db-backend", "", "value", "p", ""),
    ("decryption-key", "", "value", "p", ""),  # podman >= 4.4
    ("default-mounts-file", "", "value", "p", ""),  # podman global, not remote, hidden
    ("detach", "d", "bool", "dp", ""),  # run only (both engines)
    ("detach-keys", "", "value", "dp", ""),  # run only (both engines)
    ("device", "", "value", "dp", ""),
    ("device-cgroup-rule", "", "value", "dp", ""),
    ("device-read-bps", "", "value", "dp", ""),
    ("device-read-iops", "", "value", "dp", ""),
    ("device-write-bps", "", "value", "dp", ""),
    ("device-write-iops", "", "value", "dp", ""),
    # disable-content-trust: docker: deprecated in 29.x but parsed; podman: no-op
    ("disable-content-trust", "", "bool", "dp", ""),
    ("dns", "", "value", "dp", ""),
    ("dns-option", "", "value", "dp", ""),  # podman 4.0-4.2 only knew it as --dns-opt
    ("dns-search", "", "value", "dp", ""),
    ("domainname", "", "value", "d", ""),
    ("entrypoint", "", "value", "dp", ""),
    ("env", "e", "value", "dp", ""),
    ("env-file", "", "value", "dp", ""),
    ("env-host", "", "bool", "p", ""),  # podman: not in podman-remote
    ("env-merge", "", "value", "p", ""),  # podman >= 4.3
    ("events-backend", "", "value", "p", ""),  # podman global, not remote
    ("expose", "", "value", "dp", ""),
    ("gidmap", "", "value", "p", ""),
    ("gpus", "", "value", "dp", ""),  # podman 4.x: hidden no-op, run only; 5.x: run and create
    ("group-add", "", "value", "dp", ""),
    ("group-entry", "", "value", "p", ""),  # podman >= 4.5
    ("health-cmd", "", "value", "dp", ""),
    ("health-interval", "", "value", "dp", ""),
    ("health-log-destination", "", "value", "p", ""),  # podman >= 5.3
    ("health-max-log-count", "", "value", "p", ""),  # podman >= 5.3
    ("health-max-log-size", "", "value", "p", ""),  # podman >= 5.3
    ("health-on-failure", "", "value", "p", ""),  # podman >= 4.3
    ("health-retries", "", "value", "dp", ""),
    ("health-start-interval", "", "value", "d", ""),  # docker >= 25.0 (API 1.44)
    ("health-start-period", "", "value", "dp", ""),
    ("health-startup-cmd", "", "value", "p", ""),  # podman >= 4.4 (all health-startup-*)
    ("health-startup-interval", "", "value", "p", ""),
    ("health-startup-retries", "", "value", "p", ""),
    ("health-startup-success", "", "value", "p", ""),
    ("health-startup-timeout", "", "value", "p", ""),
    ("health-timeout", "", "value", "dp", ""),
    ("help", "", "bool", "dp", ""),  # local --help without -h (-h is --hostname)
    ("hooks-dir", "", "value", "p", ""),  # podman global, not remote
    ("hostname", "h", "value", "dp", ""),
    ("hosts-file", "", "value", "p", ""),  # podman >= 5.4
    ("hostuser", "", "value", "p", ""),
    ("http-proxy", "", "bool", "p", ""),
    ("image-volume", "", "value", "p", ""),
    ("imagestore", "", "value", "p", ""),  # podman global, not remote, >= 4.6
    ("init", "", "bool", "dp", ""),
    ("init-ctr", "", "value", "p", ""),  # podman create only
    ("init-path", "", "value", "p", ""),
    ("interactive", "i", "bool", "dp", ""),
    ("io-maxbandwidth", "", "value", "d", ""),  # docker: Windows-only, hidden
    ("io-maxiops", "", "value", "d", ""),  # docker: Windows-only, hidden
    ("ip", "", "value", "dp", ""),  # docker 29: IP-typed, still a value
    ("ip6", "", "value", "dp", ""),
    ("ipc", "", "value", "dp", ""),
    ("isolation", "", "value", "d", ""),
    ("kernel-memory", "", "value", "dp", ""),  # docker: deprecated in 29.x, parsed; podman: hidden
    ("label", "l", "value", "dp", ""),
    ("label-file", "", "value", "dp", ""),
    ("link", "", "value", "d", ""),
    ("link-local-ip", "", "value", "d", ""),
    ("log-driver", "", "value", "dp", ""),
    ("log-level", "", "value", "p", ""),  # podman global
    ("log-opt", "", "value", "dp", ""),
    ("mac-address", "", "value", "dp", ""),
    ("max-workers", "", "value", "p", ""),  # podman global, not remote, hidden
    ("memory", "m", "value", "dp", ""),
    ("memory-profile", "", "value", "p", ""),  # podman global, not remote, hidden
    ("memory-reservation", "", "value", "dp", ""),
    ("memory-swap", "", "value", "dp", ""),
    ("memory-swappiness", "", "value", "dp", ""),
    ("module", "", "value", "p", ""),  # podman global, not remote, 4.7.x only
    ("mount", "", "value", "dp", ""),
    ("name", "", "value", "dp", ""),
    ("namespace", "", "value", "p", ""),  # podman global, not remote, hidden
    ("network", "", "value", "dp", ""),
    ("network-alias", "", "value", "dp", ""),
    ("network-backend", "", "value", "p", ""),  # podman global, not remote, hidden
    ("network-cmd-path", "", "value", "p", ""),  # podman global, not remote, gone in 6.0-dev
    ("network-config-dir", "", "value", "p", ""),  # podman global, not remote
    ("no-healthcheck", "", "bool", "dp", ""),
    ("no-hostname", "", "bool", "p", ""),  # podman >= 5.4
    ("no-hosts", "", "bool", "p", ""),
    ("oom-kill-disable", "", "bool", "dp", ""),
    ("oom-score-adj", "", "value", "dp", ""),
    ("os", "", "value", "p", ""),
    ("passwd", "", "bool", "p", ""),  # podman run only
    ("passwd-entry", "", "value", "p", ""),  # podman >= 4.1
    ("personality", "", "value", "p", ""),
    ("pid", "", "value", "dp", ""),
    ("pidfile", "", "value", "p", ""),
    ("pids-limit", "", "value", "dp", ""),
    ("platform", "", "value", "dp", ""),
    ("pod", "", "value", "p", ""),
    ("pod-id-file", "", "value", "p", ""),
    ("preserve-fd", "", "value", "p", ""),  # podman >= 5.0, run only
    ("preserve-fds", "", "value", "p", ""),  # podman run only
    ("privileged", "", "bool", "dp", ""),
    ("publish", "p", "value", "dp", ""),
    ("publish-all", "P", "bool", "dp", ""),
    ("pull", "", "value", "dp", ""),
    ("pull-option", "", "value", "p", ""),  # podman global, not remote, >= 5.2, hidden
    ("quiet", "q", "bool", "dp", ""),  # docker >= 23.0
    ("rdt-class", "", "value", "p", ""),  # podman >= 4.8
    ("read-only", "", "bool", "dp", ""),
    ("read-only-tmpfs", "", "bool", "p", ""),
    ("registries-conf", "", "value", "p", ""),  # podman global, not remote, hidden
    ("replace", "", "bool", "p", ""),
    ("requires", "", "value", "p", ""),
    ("restart", "", "value", "dp", ""),
    ("retry", "", "value", "p", ""),  # podman >= 5.0
    ("retry-delay", "", "value", "p", ""),  # podman >= 5.0
    ("rm", "", "bool", "dp", ""),
    ("rmi", "", "bool", "p", ""),  # podman run only
    ("root", "", "value", "p", ""),  # podman global, not remote
    ("rootfs", "", "bool", "p", ""),  # podman: bool; first positional is then a rootfs path
    ("runroot", "", "value", "p", ""),  # podman global, not remote
    # runtime: podman: root persistent (global) flag, not in podman-remote
    ("runtime", "", "value", "dp", ""),
    ("runtime-flag", "", "value", "p", ""),  # podman global, not remote
    ("sdnotify", "", "value", "p", ""),
    ("seccomp-policy", "", "value", "p", ""),
    ("secret", "", "value", "p", ""),
    ("security-opt", "", "value", "dp", ""),
    ("shm-size", "", "value", "dp", ""),
    ("shm-size-systemd", "", "value", "p", ""),  # podman >= 4.5
    ("sig-proxy", "", "bool", "dp", ""),  # run only (both engines)
    ("signature-policy", "", "value", "p", ""),  # podman: hidden, not in podman-remote
    ("stop-signal", "", "value", "dp", ""),
    ("stop-timeout", "", "value", "dp", ""),
    ("storage-driver", "", "value", "p", ""),  # podman global, not remote
    ("storage-opt", "", "value", "dp", ""),  # podman: root persistent (global) flag
    ("subgidname", "", "value", "p", ""),
    ("subuidname", "", "value", "p", ""),
    ("sysctl", "", "value", "dp", ""),
    ("syslog", "", "bool", "p", ""),  # podman global, not remote
    ("systemd", "", "value", "p", ""),  # podman: takes a value (true|false|always)
    ("timeout", "", "value", "p", ""),
    ("tls-verify", "", "bool", "p", ""),  # podman: OptionalBool, NoOptDefVal "true"
    ("tmpdir", "", "value", "p", ""),  # podman global, not remote
    ("tmpfs", "", "value", "dp", ""),
    ("trace", "", "bool", "p", ""),  # podman global, not remote, hidden
    ("transient-store", "", "bool", "p", ""),  # podman global, not remote, >= 4.4
    ("tty", "t", "bool", "dp", ""),
    ("tz", "", "value", "p", ""),
    ("uidmap", "", "value", "p", ""),
    ("ulimit", "", "value", "dp", ""),
    ("umask", "", "value", "p", ""),
    ("unsetenv", "", "value", "p", ""),
    ("unsetenv-all", "", "bool", "p", ""),
    ("use-api-socket", "", "bool", "d", ""),  # docker >= 28.1
    ("user", "u", "value", "dp", ""),
    ("userns", "", "value", "dp", ""),
    ("uts", "", "value", "dp", ""),
    ("variant", "", "value", "p", ""),
    ("volume", "v", "value", "dp", ""),
    ("volume-driver", "", "value", "d", ""),
    ("volumepath", "", "value", "p", ""),  # podman global, not remote, >= 4.1
    ("volumes-from", "", "value", "dp", ""),
    ("workdir", "w", "value", "dp", ""),
)

# docker registers hidden alias flags sharing a variable (--net for --network); podman maps
# names with a normalize func (cmd/podman/utils.AliasFlags). name -> canonical long name,
# per engine. Resolve an alias first, then look the canonical name up in OPTIONS.
ALIASES: Dict[str, Tuple[str, str]] = {
    # podman >= 4.3 normalizes it; podman 4.0-4.2 registered --dns-opt itself and had no
    # --dns-option.
    "dns-opt": ("dns-option", "dp"),
    "healthcheck-command": ("health-cmd", "p"),
    "healthcheck-interval": ("health-interval", "p"),
    "healthcheck-retries": ("health-retries", "p"),
    "healthcheck-start-period": ("health-start-period", "p"),
    "healthcheck-timeout": ("health-timeout", "p"),
    "net": ("network", "dp"),
    "net-alias": ("network-alias", "d"),
    # Side effect of the normalize func: the inherited global --namespace is renamed "ns"
    # inside run/create's flag set, so --ns is accepted too (not in podman-remote).
    "ns": ("namespace", "p"),
    "override-arch": ("arch", "p"),
    "override-os": ("os", "p"),
    "override-variant": ("variant", "p"),
    "purge": ("rm", "p"),  # podman < 4.4 only
}
