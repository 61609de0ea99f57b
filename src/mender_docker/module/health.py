"""The health gate: every new container must stay up for a window within a timeout.

A container that exits during the gate fails it at once, whatever its restart
policy: waiting out the timeout while the engine restarts a crashing container
would only make the outage longer before the rollback. The gate may first look
before the exit, between it and the restart, or after the restart (the engine's
restart count then tells, and `inspect` shows exit code 0 again): the error names
the restart count and the last exit code in every case (see fail).

A container with a HEALTHCHECK must also be reported healthy. Podman 4 runs the
probes only from systemd timers (see Engine.runs_healthchecks): on podman the
gate runs each container's probe itself, at the check's own interval counted
from the start of the gate (as dockerd's first probe waits one interval), and
reads the result the engine recorded, retries and start period included.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mender_docker.module.context import Context
from mender_docker.module.engine import ContainerInfo
from mender_docker.module.errors import HealthCheckError
from mender_docker.module.log import log, short

POLL_SECONDS = 0.5
LOG_LINES = 10
EXITED = ("exited", "dead", "restarting", "stopped")  # podman says stopped, docker exited


def is_good(info: ContainerInfo) -> bool:
    return info.running and info.health in (None, "healthy")


def wait_healthy(ctx: Context, ids: Sequence[str], timeout: float, window: float) -> None:
    """Return once all `ids` were seen up (and healthy, given a healthcheck) without a
    restart for `window` seconds; raise HealthCheckError at `timeout` or on a dead end."""
    if not ids:
        return
    log(f"health gate: {len(ids)} container(s) must stay up {window:g} s within {timeout:g} s")
    deadline = ctx.clock() + timeout
    # id -> (first time seen good, StartedAt then): a restart in between resets it
    good_since: Dict[str, Optional[Tuple[float, str]]] = {i: None for i in ids}
    last: Dict[str, ContainerInfo] = {}
    drive = not ctx.engine.runs_healthchecks()
    next_probe: Dict[str, float] = {}  # id -> when the gate runs its HEALTHCHECK next
    while True:
        now = ctx.clock()
        seen = {c.id: c for c in ctx.engine.inspect_containers(ids)}
        for container_id in ids:
            info = seen.get(container_id)
            if info is None:
                raise HealthCheckError(f"new container {short(container_id)} has disappeared")
            last[container_id] = info
            since = good_since[container_id]
            if info.status in EXITED or info.restart_count > 0:
                fail(ctx, info, "exited during the health gate")
            if since is not None and since[1] != info.started_at:
                fail(ctx, info, "was restarted by the engine during the health gate", True)
            if not is_good(info):
                good_since[container_id] = None
            elif since is None:
                good_since[container_id] = (now, info.started_at)
            if drive and info.running and info.health is not None:
                if container_id not in next_probe:
                    log(f"{info.name}: the gate runs its HEALTHCHECK every "
                        f"{info.health_interval:g} s (the engine runs it only from systemd timers)")
                due = next_probe.setdefault(container_id, now + info.health_interval)
                if now >= due:
                    probe(ctx, info)
                    next_probe[container_id] = now + info.health_interval
        if all(_passed(s, now, window) for s in good_since.values()):
            log("health gate passed")
            return
        if now >= deadline:
            waiting: List[ContainerInfo] = [
                last[i] for i in ids if not _passed(good_since[i], now, window)
            ]
            fail(ctx, waiting[0], f"did not stay up for {window:g} s within {timeout:g} s")
        ctx.sleep(max(0.0, min(POLL_SECONDS, deadline - now)) or POLL_SECONDS)


def probe(ctx: Context, info: ContainerInfo) -> None:
    """Run the container's HEALTHCHECK once; the next inspect shows the outcome."""
    result = ctx.engine.run_healthcheck(info.id)
    if result not in ("healthy", "unhealthy"):
        log(f"health check of {info.name} did not run: {result}")


def _passed(since: Optional[Tuple[float, str]], now: float, window: float) -> bool:
    return since is not None and now - since[0] >= window


def fail(ctx: Context, info: ContainerInfo, why: str, restarted: bool = False) -> None:
    """Log the container's last lines and raise HealthCheckError: `why`, then its
    state; for a container that exited or was restarted (`restarted`: the gate saw
    it start again), its restart count and last exit code too."""
    state = info.status if info.health is None else f"{info.status}, health {info.health}"
    if info.status in EXITED or info.restart_count > 0 or restarted:
        state += f", {exit_history(ctx, info, restarted)}"
    elif not info.running:
        state += f", exit code {info.exit_code}"
    for line in ctx.engine.logs_tail(info.id, LOG_LINES).splitlines()[-LOG_LINES:]:
        log(f"  {info.name} log: {line}")
    raise HealthCheckError(f"container {info.name} ({short(info.id)}) {why} ({state})")


def exit_history(ctx: Context, info: ContainerInfo, restarted: bool = False) -> str:
    """`restarted N times, last exit code C`, whichever order the exits, the
    engine's restarts and the gate's looks came in: while the container is down
    (or docker's `restarting`) inspect has its exit code; once the engine has
    restarted it, that says 0 and the engine's events tell. The count is the
    engine's, of restarts by the restart policy: one the gate saw otherwise
    (`restarted`, e.g. by a restarted dockerd) may not be in it."""
    count = info.restart_count
    if count or not restarted:
        restarts = f"restarted {count} time{'' if count == 1 else 's'}"
    else:
        restarts = "restart count 0"
    if info.status in EXITED:
        code: Optional[int] = info.exit_code
    else:
        code = ctx.engine.last_exit_code(info.id, info.created)
    return f"{restarts}, last exit code {'unknown' if code is None else code}"


def wait_completed(ctx: Context, container_id: str, timeout: float) -> None:
    """Wait for a one-shot container (a `service_completed_successfully`
    dependency) to exit 0; HealthCheckError if it fails or outlives `timeout`."""
    deadline = ctx.clock() + timeout
    while True:
        found = ctx.engine.inspect_containers([container_id])
        if not found:
            raise HealthCheckError(f"container {short(container_id)} has disappeared")
        info = found[0]
        if info.status in EXITED and info.status != "restarting":
            if info.exit_code != 0:
                fail(ctx, info, "did not complete successfully")
            return
        if ctx.clock() >= deadline:
            fail(ctx, info, f"did not complete within {timeout:g} s")
        ctx.sleep(POLL_SECONDS)
