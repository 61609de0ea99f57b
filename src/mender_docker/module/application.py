"""A Compose application on the device: its networks and volumes, labels, start order.

The generator turns a Compose file into containers (see spec: `project`,
`services`, `depends_on`, `networks`, `volumes`). Here the device gives them what
`docker compose up` would: Compose's names and labels (so `docker compose ps`
and `logs` make sense where the tool is installed), the networks before the
services, the named volumes, and the services in dependency order.

Networks this deployment creates are journalled before they are made, and
removed by a rollback, a failed cleanup, or the cleanup after the next release
that no longer uses them, but only when no container is attached (that removal
is deployment.py's: `remove_unused_networks`, `stale_networks`). Named volumes
are a user's data: created when missing, never removed.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Sequence

from mender_docker.module.context import Context
from mender_docker.module.health import wait_completed, wait_healthy
from mender_docker.module.journal import Deployment, Journal
from mender_docker.module.log import log, short
from mender_docker.spec import DockerMetadata, PlannedContainer, network_options, start_order

COMPOSE = "com.docker.compose"


def compose_labels(
    meta: DockerMetadata, item: PlannedContainer, config_hash: str
) -> Dict[str, str]:
    """The labels `docker compose` finds a project's containers by (it lists only
    containers with a config-hash label)."""
    if meta.project is None or item.service is None:
        return {}
    return {
        f"{COMPOSE}.project": meta.project,
        f"{COMPOSE}.service": item.service,
        f"{COMPOSE}.container-number": "1",
        f"{COMPOSE}.oneoff": "False",
        f"{COMPOSE}.config-hash": config_hash,
    }


def _object_labels(ctx: Context, meta: DockerMetadata, kind: str, name: str) -> Dict[str, str]:
    labels = {ctx.label("managed"): "1"}
    if meta.project is not None:
        key = name[len(meta.project) + 1 :] if name.startswith(meta.project + "_") else name
        labels.update({f"{COMPOSE}.project": meta.project, f"{COMPOSE}.{kind}": key})
    return labels


def ensure_networks_and_volumes(
    ctx: Context, meta: DockerMetadata, deployment: Deployment, journal: Journal
) -> None:
    """Create what the application needs and the device lacks. A network is
    journalled before it is created (a crash in between leaves a record, not an
    orphan); a volume is not: it is never removed."""
    options = meta.network_options or ("",) * len(meta.networks or ())
    for name, text in zip(meta.networks or (), options):
        if ctx.engine.network_exists(name):
            continue
        if name not in deployment.networks_created:
            deployment.networks_created.append(name)
            ctx.store.save(journal)
        log(f"creating network {name}")
        ctx.engine.create_network(
            name,
            _object_labels(ctx, meta, "network", name),
            network_options(text, f"network {name}"),
        )
    for name in meta.volumes or ():
        if not ctx.engine.volume_exists(name):
            log(f"creating volume {name}")
            ctx.engine.create_volume(name, _object_labels(ctx, meta, "volume", name))


def start_in_order(
    ctx: Context,
    plan: Sequence[PlannedContainer],
    created: Mapping[str, str],
    running: Mapping[str, str],
    timeout: float,
    start: Callable[[Sequence[str]], None],
) -> List[str]:
    """Start the created containers (`created`: name -> id) wave by wave in
    dependency order, waiting for each dependency's condition first; restart an
    unchanged dependent whose `restart: true` dependency was replaced (`running`:
    name -> id of every container of the release). Returns the ids the health gate
    must watch: all created but the one-shot services others wait to complete."""
    by_service = {item.service: item for item in plan if item.service is not None}
    graph = {service: [d.service for d in item.depends_on] for service, item in by_service.items()}
    one_shots = {  # names of the services others wait to complete
        by_service[d.service].name
        for item in plan
        for d in item.depends_on
        if d.condition == "service_completed_successfully"
    }
    for wave in start_order(graph):
        for service in wave:
            item = by_service[service]
            for need in item.depends_on:
                _wait_for(ctx, by_service[need.service], need.condition, running, timeout)
        start([created[by_service[s].name] for s in wave if by_service[s].name in created])
        for service in wave:
            item = by_service[service]
            if item.name in created:
                continue
            if any(d.restart and by_service[d.service].name in created for d in item.depends_on):
                log(f"restarting {item.name}: a service it depends on was replaced")
                ctx.engine.stop(running[item.name], ctx.config.stop_timeout)
                ctx.engine.start(running[item.name])
    return [cid for name, cid in created.items() if name not in one_shots]


def _wait_for(
    ctx: Context,
    item: PlannedContainer,
    condition: str,
    running: Mapping[str, str],
    timeout: float,
) -> None:
    container_id = running[item.name]
    if condition == "service_healthy":
        log(f"waiting for {item.name} ({short(container_id)}) to be healthy")
        wait_healthy(ctx, [container_id], timeout, 0.0)
    elif condition == "service_completed_successfully":
        log(f"waiting for {item.name} ({short(container_id)}) to complete")
        wait_completed(ctx, container_id, timeout)
