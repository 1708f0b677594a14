"""The deploy files agree with the code: every service is deployed, every `PIGEON_*`
variable they set is a setting, every port is the service's default, every probe path is
answered by the service's own app (liveness without the servers, readiness only with
them), and secrets travel only through the secret files."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from pigeon_cli.services import SERVICES
from pigeon_cli.settings import AllSettings
from pigeon_common.settings import ENV_PREFIX, SettingsError, load_settings
from tests.unit.deploy import manifests
from tests.unit.deploy.manifests import Doc

SETTINGS_VARIABLES = {f"{ENV_PREFIX}{name.upper()}" for name in AllSettings.model_fields}
SECRET_VARIABLES = {"PIGEON_SECRET_KEY", "PIGEON_SECRET_KEYS_PREVIOUS", "PIGEON_DATABASE_URL"}
API_CLIENTS = {"mcp"}  # services that hold no secret and reach no server
HEALTHCHECK_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/?=&.-]*)")
LIVENESS, READINESS = "/healthz", "/readyz"


def default_port(service: str) -> int:
    default = AllSettings.model_fields[f"{service.replace('-', '_')}_port"].default
    assert isinstance(default, int)
    return default


def deploy_files() -> list[Path]:
    """Every file of the deploy setup that may name a setting."""
    return [
        manifests.COMPOSE_FILE,
        manifests.ROOT / "Dockerfile",
        *sorted(p for p in manifests.COMPOSE_DIR.rglob("*") if p.is_file()),
        *sorted(manifests.K8S_DIR.glob("*.yaml")),
    ]


def compose_healthcheck(service: Doc) -> tuple[int, str]:
    """(port, path) of a compose service's healthcheck URL."""
    match = HEALTHCHECK_URL.search(" ".join(service["healthcheck"]["test"]))
    assert match is not None, service["healthcheck"]
    return int(match.group(1)), match.group(2)


# --- coverage and settings ---------------------------------------------------------------


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
def test_compose_runs_every_service(topology: str) -> None:
    assert set(manifests.compose_pigeon_services(topology)) == set(SERVICES)


def test_kubernetes_runs_every_service_in_a_deployment() -> None:
    containers = manifests.k8s_pigeon_containers()
    assert set(containers) == set(SERVICES)
    deployments = manifests.k8s_objects("Deployment")
    assert {c.workload for c in containers.values()} <= set(deployments)


@pytest.mark.parametrize("path", deploy_files(), ids=lambda p: str(p.relative_to(manifests.ROOT)))
def test_every_pigeon_variable_named_is_a_setting(path: Path) -> None:
    named = manifests.pigeon_variables_in(path.read_text())
    assert named - SETTINGS_VARIABLES == set()


def test_the_variable_check_sees_what_the_files_set() -> None:
    """The scan is not vacuous: the variables each deployment sets are found."""
    compose_vars = manifests.pigeon_variables_in(manifests.raw_compose())
    k8s_vars = set().union(
        *(manifests.pigeon_variables_in(doc) for _, doc in manifests.k8s_documents())
    )
    for found in (compose_vars, k8s_vars):
        assert {"PIGEON_NATS_URL", "PIGEON_JETSTREAM_REPLICAS", "PIGEON_PUBLIC_BASE_URL"} <= found
    assert k8s_vars >= SECRET_VARIABLES


# --- ports ---------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_compose_ports_are_the_setting_defaults(service: str, topology: str) -> None:
    definition = manifests.compose_pigeon_services(topology)[service]
    port = default_port(service)
    assert compose_healthcheck(definition)[0] == port
    assert definition["labels"]["prometheus.io/port"] == str(port)
    for published in definition.get("ports", []):
        assert published.rsplit(":", 1)[1] == str(port)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_kubernetes_ports_are_the_setting_defaults(service: str) -> None:
    container = manifests.k8s_pigeon_containers()[service]
    port = default_port(service)
    assert [p["containerPort"] for p in container.spec["ports"]] == [port]
    assert {p for _, p in container.http_probes().values()} == {port}
    assert container.pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)


# --- probes --------------------------------------------------------------------------------


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@asynccontextmanager
async def service_app(service: str, settings: AllSettings) -> AsyncIterator[Any]:
    """The ASGI app `pigeon serve <service>` answers HTTP with, built as its serve() builds
    it, not connected to any server."""
    if service == "api":
        from pigeon_api.app import create_app

        yield create_app(settings)
    elif service == "tracker":
        from pigeon_tracker.app import create_app as create_tracker

        yield create_tracker(settings)
    elif service == "mcp":
        from pigeon_mcp.api import Api
        from pigeon_mcp.server import MCP_PATH, create_server
        from pigeon_mcp.service import add_health_routes

        api = Api(settings.api_base)
        try:
            server = create_server(settings, api)
            app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=settings.mcp_host)
            add_health_routes(app, api)
            yield app
        finally:
            await api.close()
    else:  # the services without an HTTP API of their own: run_with_health(.., service.check)
        from pigeon_common.health import health_app
        from pigeon_imap_sync.service import ImapSyncService
        from pigeon_projector.service import ProjectorService
        from pigeon_sender.service import SenderService

        checked: dict[str, Callable[[AllSettings], Any]] = {
            "projector": ProjectorService,
            "sender": SenderService,
            "imap-sync": ImapSyncService,
        }
        yield health_app(checked[service](settings).check)


def probe_paths() -> set[tuple[str, str, str]]:
    """(service, probe kind, path) of every probe in compose and Kubernetes."""
    found = set()
    for topology in manifests.TOPOLOGIES:
        for service, definition in manifests.compose_pigeon_services(topology).items():
            found.add((service, "healthcheck", compose_healthcheck(definition)[1]))
    for service, container in manifests.k8s_pigeon_containers().items():
        for kind, (path, _) in container.http_probes().items():
            found.add((service, kind, path))
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_each_probe_is_answered_by_its_service(service: str) -> None:
    """Liveness (and start-up) probes ask /healthz, which answers while NATS and PostgreSQL
    are away, so an outage does not restart every pod; readiness (and compose's
    healthcheck, which gates depends_on) asks /readyz, which refuses until they answer."""
    probes = sorted((kind, path) for s, kind, path in probe_paths() if s == service)
    assert {kind for kind, _ in probes} == {
        "healthcheck",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
    }
    with refused_port() as port:
        nowhere = f"127.0.0.1:{port}"
        settings = AllSettings(
            secret_key="k" * 40,
            database_url=f"postgresql://pigeon@{nowhere}/pigeon",
            nats_url=f"nats://{nowhere}",
            api_url=f"http://{nowhere}",
        )
        async with service_app(service, settings) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pod") as client:
                answers = {
                    path: (await client.get(path, timeout=10)).status_code for _, path in probes
                }
    for kind, path in probes:
        if kind in ("startupProbe", "livenessProbe"):
            assert (path, answers[path]) == (LIVENESS, 200), kind
        else:
            assert (path, answers[path]) == (READINESS, 503), kind


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
def test_compose_secrets_come_only_from_the_env_file(topology: str) -> None:
    example = manifests.read_env_file(manifests.COMPOSE_DIR / "pigeon.env.example")
    assert set(example) == SECRET_VARIABLES
    for service, definition in manifests.compose_pigeon_services(topology).items():
        assert not set(definition.get("environment", {})) & SECRET_VARIABLES
        files = [entry["path"] for entry in definition.get("env_file", [])]
        assert files == ([] if service in API_CLIENTS else ["deploy/compose/pigeon.env"])
    ignored = (manifests.COMPOSE_DIR / ".gitignore").read_text().split()
    assert {"pigeon.env", "postgres.env"} <= set(ignored)


def test_kubernetes_secrets_come_only_from_the_secret() -> None:
    secret = manifests.k8s_objects("Secret")["pigeon"]["stringData"]
    assert set(secret) == SECRET_VARIABLES
    config = manifests.k8s_objects("ConfigMap")["pigeon"]["data"]
    assert not set(config) & SECRET_VARIABLES
    for service, container in manifests.k8s_pigeon_containers().items():
        refs = container.spec.get("envFrom", [])
        has_secret = {"secretRef": {"name": "pigeon"}} in refs
        assert has_secret == (service not in API_CLIENTS)
        assert not {e["name"] for e in container.spec.get("env", [])} & SECRET_VARIABLES


def database_password(url: str) -> str | None:
    return urlsplit(url).password


def test_the_database_password_is_the_same_on_both_sides() -> None:
    secrets = manifests.k8s_objects("Secret")
    url = secrets["pigeon"]["stringData"]["PIGEON_DATABASE_URL"]
    assert database_password(url) == secrets["postgres"]["stringData"]["POSTGRES_PASSWORD"]
    pigeon = manifests.read_env_file(manifests.COMPOSE_DIR / "pigeon.env.example")
    postgres = manifests.read_env_file(manifests.COMPOSE_DIR / "postgres.env.example")
    assert database_password(pigeon["PIGEON_DATABASE_URL"]) == postgres["POSTGRES_PASSWORD"]


def placeholder_environments() -> dict[str, dict[str, str]]:
    k8s = dict(manifests.k8s_objects("ConfigMap")["pigeon"]["data"])
    k8s |= manifests.k8s_objects("Secret")["pigeon"]["stringData"]
    compose = manifests.read_env_file(manifests.COMPOSE_DIR / "pigeon.env.example")
    compose |= manifests.compose("single")["x-pigeon"]["environment"]
    return {"k8s": k8s, "compose": compose}


@pytest.mark.parametrize("name", sorted(placeholder_environments()))
def test_the_placeholder_secret_key_is_refused(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shipped placeholders never run: a service started with them stops at once."""
    for variable in list(SETTINGS_VARIABLES):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in placeholder_environments()[name].items():
        monkeypatch.setenv(variable, str(value))
    with pytest.raises(SettingsError) as caught:
        load_settings(AllSettings)
    assert caught.value.variable == "PIGEON_SECRET_KEY"
