"""A Compose project as meta-data (gen_compose.py): each service's settings become run
options the device parses and its policy judges like any other."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Dict, List

import pytest

from mender_docker.cli import gen as cli_gen
from mender_docker.cli.gen import parse_options
from mender_docker.compose.loader import load_project
from mender_docker.compose.model import ComposeError
from mender_docker.errors import GeneratorError
from mender_docker.gen import with_application
from mender_docker.gen_compose import Application, application
from mender_docker.module.policy import find_violations, policy_from_settings
from mender_docker.spec import DockerMetadata, MetadataError, parse_metadata

DIGEST = "sha256:" + "ab" * 32


def app_of(tmp_path: Path, text: str) -> Application:
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    return application(load_project(str(path), "shop", (), environ={}))


def metadata(app: Application) -> DockerMetadata:
    meta = DockerMetadata(
        containers=tuple(f"{image}@{DIGEST}" for image in app.images),
        container_args=app.container_args,
        names=app.names if any(app.names) else None,
        health_exec=app.health_exec if any(app.health_exec) else None,
        project=app.project,
        services=app.services,
        commands=app.commands,
        depends_on=app.depends_on,
        networks=app.networks or None,
        network_options=app.network_options if any(app.network_options) else None,
        volumes=app.volumes or None,
    )
    return parse_metadata(meta.to_dict())


TWO = """
services:
  api:
    image: registry.example.com/api
    command: serve --port 80
    environment: {MODE: prod}
    volumes: [data:/data, /srv/conf:/conf:ro]
    healthcheck: {test: [CMD, wget, -q, "http://localhost/"], interval: 1m30s, retries: 3}
    networks: [back]
  web:
    image: registry.example.com/web
    ports: ["127.0.0.1:8080:80"]
    depends_on: {api: {condition: service_healthy, restart: true}}
    networks:
      back: {aliases: [front]}
      default: {}
    stop_grace_period: 20s
    restart: unless-stopped
volumes:
  data: {}
networks:
  back: {}
"""


def test_services_become_containers_with_run_options(tmp_path: Path) -> None:
    app = app_of(tmp_path, TWO)
    meta = metadata(app)
    api, web = meta.plan("docker")
    assert (api.name, web.name) == ("shop-api-1", "shop-web-1")
    assert api.command == ("serve", "--port", "80")
    options: Dict[str, List[str]] = {}
    for use in api.run.uses:
        options.setdefault(use.option, []).append(use.value)
    assert options["restart"] == ["no"]  # Compose's default, not the module's
    assert options["env"] == ["MODE=prod"]
    assert options["mount"] == ["type=volume,src=shop_data,dst=/data"]
    assert options["volume"] == ["/srv/conf:/conf:ro"]
    assert options["network"] == ["shop_back"]
    assert options["network-alias"] == ["shop-api-1", "api"]  # as Compose: container, service
    assert options["health-cmd"] == ["wget -q http://localhost/"]
    assert options["health-interval"] == ["90s"] and options["health-retries"] == ["3"]
    assert options["tty"] == ["false"]
    # `front` is web's alias on `back` only: each network in docker's CSV form
    assert web.run.values("network") == [
        "name=shop_back,alias=shop-web-1,alias=web,alias=front",
        "name=shop_default,alias=shop-web-1,alias=web",
    ]
    assert web.run.values("network-alias") == []
    assert web.run.values("publish") == ["127.0.0.1:8080:80/tcp"]
    assert web.run.values("stop-timeout") == ["20"]
    assert [str(d) for d in web.depends_on] == ["api:service_healthy:restart"]
    assert meta.networks == ("shop_back", "shop_default")
    assert meta.volumes == ("shop_data",)


def test_container_name_names_the_container_and_its_peers(tmp_path: Path) -> None:
    app = app_of(
        tmp_path,
        """
services:
  db:
    image: registry.example.com/db
    container_name: immich_postgres
  app:
    image: registry.example.com/app
    environment: {DB_HOST: immich_postgres}
  sidecar:
    image: registry.example.com/sidecar
    network_mode: service:db
    pid: service:app
""",
    )
    db, web, sidecar = metadata(app).plan("docker")
    assert (db.name, web.name, sidecar.name) == ("immich_postgres", "shop-app-1", "shop-sidecar-1")
    assert sidecar.run.values("network") == ["container:immich_postgres"]
    assert sidecar.run.values("pid") == ["container:shop-app-1"]


EXEC_CHECK = """
services:
  db:
    image: registry.example.com/db
    healthcheck: {test: [CMD, pg_isready, -U, "my app", "$$HOME"]}
  web:
    image: registry.example.com/web
    healthcheck: {test: [CMD, healthy]}
  shell:
    image: registry.example.com/shell
    healthcheck: {test: "curl -f http://localhost/ || exit 1"}
"""


def test_an_exec_form_health_check_runs_the_same_argv_on_each_engine(tmp_path: Path) -> None:
    app = app_of(tmp_path, EXEC_CHECK)
    assert app.health_exec == ("pg_isready -U 'my app' '$HOME'", "healthy", "")
    assert [n.split(":")[0] for n in app.notes] == ["service 'db'", "service 'web'"]
    assert all("/bin/sh" in note for note in app.notes)
    meta = metadata(app)
    db, web, shell = meta.plan("docker")
    assert db.run.values("health-cmd") == ["pg_isready -U 'my app' '$HOME'"]
    assert shlex.split(db.run.values("health-cmd")[0]) == ["pg_isready", "-U", "my app", "$HOME"]
    assert web.run.values("health-cmd") == ["healthy"]
    assert shell.run.values("health-cmd") == ["curl -f http://localhost/ || exit 1"]
    db, web, shell = meta.plan("podman")
    assert db.run.values("health-cmd") == ['["pg_isready", "-U", "my app", "$HOME"]']
    assert web.run.values("health-cmd") == ["healthy"]  # one item: podman's shell form
    assert shell.run.values("health-cmd") == ["curl -f http://localhost/ || exit 1"]


def test_health_exec_must_match_the_containers_health_cmd(tmp_path: Path) -> None:
    raw = metadata(app_of(tmp_path, EXEC_CHECK)).to_dict()
    raw["health_exec"][0] = "pg_isready -U other"
    with pytest.raises(MetadataError, match=r"health_exec\[0\] is not the exec form"):
        parse_metadata(raw)


def test_internal_and_ipam_networks_become_network_create_options(tmp_path: Path) -> None:
    app = app_of(
        tmp_path,
        """
services:
  a: {image: registry.example.com/a, networks: [inner, dns, outer]}
networks:
  inner: {internal: true}
  dns:
    driver: bridge
    driver_opts: {com.docker.network.bridge.name: br-dns}
    ipam:
      config:
        - {subnet: 172.20.0.0/24, gateway: 172.20.0.1, aux_addresses: {host1: 172.20.0.5}}
  outer: {external: true}
""",
    )
    assert app.networks == ("shop_inner", "shop_dns")
    meta = metadata(app)
    assert meta.network_options == (
        "--internal",
        "--opt=com.docker.network.bridge.name=br-dns --subnet=172.20.0.0/24"
        " --gateway=172.20.0.1 --aux-address=host1=172.20.0.5",
    )
    raw = meta.to_dict()
    raw["network_options"][0] = "--internal --config-from=x"
    with pytest.raises(MetadataError, match="not a network option"):
        parse_metadata(raw)


def test_secrets_and_configs_in_device_files_are_mounted_read_only(tmp_path: Path) -> None:
    app = app_of(
        tmp_path,
        """
services:
  a:
    image: registry.example.com/a
    secrets: [db, {source: key, target: api_key, mode: 0440}, {source: key, target: /etc/k}]
    configs: [conf, {source: conf, target: etc/app.conf}]
secrets:
  db: {file: /srv/secrets/db.txt}
  key: {file: /srv/secrets/key}
configs:
  conf: {file: /srv/app.conf}
""",
    )
    (a,) = metadata(app).plan("docker")
    assert a.run.values("mount") == [
        "type=bind,src=/srv/secrets/db.txt,dst=/run/secrets/db,readonly",
        "type=bind,src=/srv/secrets/key,dst=/run/secrets/api_key,readonly",
        "type=bind,src=/srv/secrets/key,dst=/etc/k,readonly",
        "type=bind,src=/srv/app.conf,dst=/conf,readonly",
        "type=bind,src=/srv/app.conf,dst=/etc/app.conf,readonly",
    ]
    assert app.notes == (
        "service 'a': secrets: 'key': uid, gid and mode are ignored for a bind-mounted file,"
        " as Compose ignores them",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{file: ./db.txt}", r"secrets\[0\]: bind source './db.txt' is relative"),
        ("{environment: DB_PASSWORD}", r"secrets\[0\]: 'db' is from an environment variable"),
        ("{external: true}", r"secrets\[0\]: 'db' is external"),
    ],
)
def test_a_secret_the_device_has_no_file_for_is_refused(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(ComposeError, match=message):
        app_of(tmp_path, f"services: {{a: {{image: x, secrets: [db]}}}}\nsecrets: {{db: {body}}}\n")


def test_the_policy_judges_a_compose_file_like_run_arguments(tmp_path: Path) -> None:
    app = app_of(
        tmp_path,
        """
services:
  bad:
    image: registry.example.com/bad
    privileged: true
    network_mode: host
    volumes: ["/:/host"]
""",
    )
    plan = metadata(app).plan("docker")
    found = find_violations(plan, policy_from_settings({"deny_run_args": "dangerous"}))
    assert sorted(v.rule for v in found) == ["--network=host", "--privileged", "bind=/"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: {a: {image: x, networks: [n]}}\nnetworks: {n: {driver: overlay}}", "bridge"),
        ('services: {a: {image: x, volumes: ["d1:/v"]}}\nvolumes: {d1: {driver: nfs}}', "local"),
        ('services: {a: {image: x, volumes: ["./nginx.conf:/etc/nginx.conf:ro"]}}',
         r"volumes\[0\]: bind source './nginx.conf' is relative .* do not travel"),
        ('services: {a: {image: x, volumes: [{type: bind, source: data, target: /d}]}}',
         "bind source 'data' is relative"),
        ('services: {a: {image: x, volumes: ["~/data:/data"]}}', "`~` is the home directory"),
        ("services: {a: {image: x, security_opt: [seccomp=./profile.json]}}",
         "security_opt: 'seccomp=./profile.json'"),
        ('services: {a: {image: x, volumes: [{type: bind, source: "/a,b", target: /d}]}}',
         "a path with a comma"),
        ("services: {a: {build: .}}", r"service 'a': build: .* --resolver docker .*shop-a"),
        ("services: {a: {image: x, platform: linux/arm64}}", "--platform"),
    ],
)
def test_what_the_device_cannot_do_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ComposeError, match=message):
        app_of(tmp_path, text)


def test_what_compose_applies_outside_swarm(tmp_path: Path) -> None:
    app = app_of(
        tmp_path,
        """
services:
  a:
    image: registry.example.com/a
    environment: [TZ, SET=1]
    volumes: ["/srv/d:/d:z", "/srv/e:/e:ro,rshared", "/srv/f,g:/f"]
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 100}
        reservations: {memory: 32M}
      restart_policy: {condition: on-failure, max_attempts: 3}
  b:
    image: registry.example.com/b
    build: ./b
    volumes: [{type: bind, source: /srv/p, target: /p, bind: {propagation: rslave}}]
""",
    )
    assert app.notes == ("service 'a': environment: TZ is not set on this workstation: left unset",)
    a, b = metadata(app).plan("docker")
    assert a.run.values("env") == ["SET=1"]
    assert a.run.values("volume") == ["/srv/d:/d:z", "/srv/e:/e:ro,rshared", "/srv/f,g:/f"]
    assert a.run.values("memory") == [str(64 << 20)]
    assert a.run.values("memory-reservation") == [str(32 << 20)]
    assert a.run.values("cpus") == ["0.5"] and a.run.values("pids-limit") == ["100"]
    assert a.run.values("restart") == ["on-failure:3"]
    assert b.image.startswith("registry.example.com/b@")  # build: with image: runs the image
    assert b.run.values("mount") == ["type=bind,src=/srv/p,dst=/p,bind-propagation=rslave"]


def test_a_build_only_service_takes_the_local_build_with_the_docker_resolver(
    tmp_path: Path,
) -> None:
    (tmp_path / "compose.yaml").write_text("services: {web: {build: .}}\n")
    project = load_project(str(tmp_path / "compose.yaml"), "shop", (), environ={})
    assert application(project, local_builds=True).images == ("shop-web",)


def test_compose_takes_no_images_or_run_arguments(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {a: {image: registry.example.com/a}}\n")
    compose = ["--compose", str(tmp_path / "compose.yaml")]
    for extra in (["registry.example.com/b"], ["--run-args", "-e A=1"], ["--name", "x"]):
        options = parse_options(["-n", "x", "-t", "d", *compose, *extra])
        with pytest.raises(GeneratorError, match="--compose takes its images"):
            with_application(options)
    options = with_application(parse_options(["-n", "x", "-t", "d", *compose]))
    assert options.images == ["registry.example.com/a"]
    assert options.application is not None and options.application.services == ("a",)


def test_repeated_compose_files_are_merged(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services: {a: {image: registry.example.com/dev, ports: ['8080:80']}}\n"
    )
    (tmp_path / "prod.yaml").write_text("services: {a: {image: registry.example.com/prod}}\n")
    argv = ["-n", "x", "-t", "d", "--compose", str(tmp_path / "compose.yaml"),
            "--compose", str(tmp_path / "prod.yaml"), "--project-name", "shop"]  # fmt: skip
    options = with_application(parse_options(argv))
    assert options.images == ["registry.example.com/prod"]
    assert options.application is not None
    assert "--publish=8080:80/tcp" in options.application.container_args[0]


def test_the_generator_says_its_notes_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "compose.yaml").write_text(EXEC_CHECK)

    def stop(options: object, **_: object) -> None:
        raise GeneratorError("stopped before any registry")

    monkeypatch.setattr(cli_gen, "generate", stop)
    argv = ["-n", "x", "-t", "d", "-o", str(tmp_path / "x.mender"),
            "--compose", str(tmp_path / "compose.yaml")]  # fmt: skip
    assert cli_gen.main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("docker-artifact-gen: note: service 'db': healthcheck: on docker")
    assert "/bin/sh" in err[0]
    assert err[-1] == "docker-artifact-gen: error: stopped before any registry"
