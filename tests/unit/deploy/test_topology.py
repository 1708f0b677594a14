"""How the deployments are put together: the NATS topologies (compose's single node and
3-node cluster profile, the Kubernetes StatefulSet after the NATS Helm chart), graceful
stops, what is published, and the tracker's scaling and Ingress."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from pigeon_tracker.app import CLICK_PREFIX, OPEN_PREFIX, UNSUBSCRIBE_PREFIX
from tests.unit.deploy import manifests
from tests.unit.deploy.manifests import Doc

NATS_PREFIX = "nats"
CLIENT_PORT, ROUTE_PORT, MONITOR_PORT = 4222, 6222, 8222
PUBLIC_SERVICES = {"api", "tracker", "mcp"}
DURATION = re.compile(r"^(\d+)(s|m)$")


def seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match is not None, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def conf_code(conf: str) -> str:
    """A nats-server configuration without its comments."""
    return "\n".join(line.split("#")[0] for line in conf.splitlines())


def conf_value(conf: str, key: str) -> str:
    match = re.search(rf"^\s*{key}:\s*(\S+)\s*$", conf, re.MULTILINE)
    assert match is not None, key
    return match.group(1)


def conf_routes(conf: str) -> list[tuple[str, int]]:
    return [(h, int(p)) for h, p in re.findall(r"nats(?:-route)?://([\w.-]+):(\d+)", conf)]


def url_hosts(urls: str) -> list[tuple[str, int]]:
    parts = [urlsplit(url.strip()) for url in urls.split(",")]
    return [(part.hostname or "", part.port or 0) for part in parts]


def compose_nats(topology: str) -> dict[str, Doc]:
    services = manifests.active_services(topology)
    return {name: s for name, s in services.items() if s["image"].startswith("nats:")}


def compose_conf(service: Doc) -> str:
    flag, path = service["command"]
    assert flag == "--config" and isinstance(path, str) and path.startswith("/etc/nats/")
    return (manifests.COMPOSE_DIR / "nats" / path.removeprefix("/etc/nats/")).read_text()


# --- compose ---------------------------------------------------------------------------------


def test_compose_by_default_runs_one_standalone_nats_server() -> None:
    nats = compose_nats("single")
    assert list(nats) == ["nats"]
    conf = compose_conf(nats["nats"])
    assert "cluster" not in conf_code(conf) and conf_routes(conf) == []
    assert "jetstream" in conf_code(conf)
    environment = manifests.compose("single")["x-pigeon"]["environment"]
    assert url_hosts(environment["PIGEON_NATS_URL"]) == [("nats", CLIENT_PORT)]
    assert environment["PIGEON_JETSTREAM_REPLICAS"] == "1"


def test_the_compose_cluster_profile_runs_three_routed_nodes() -> None:
    nats = compose_nats("cluster")
    assert sorted(nats) == ["nats", "nats-2", "nats-3"]
    assert {n for n, s in nats.items() if "cluster" in s.get("profiles", [])} == {
        "nats-2",
        "nats-3",
    }
    names, volumes = set(), set()
    for service in nats.values():
        conf = compose_conf(service)
        assert conf_value(conf, "name") == "pigeon"  # the cluster's name
        assert sorted(conf_routes(conf)) == sorted((n, ROUTE_PORT) for n in nats)
        assert conf_value(conf, "server_name") == "$NATS_SERVER_NAME"
        names.add(service["environment"]["NATS_SERVER_NAME"])
        data = [v.split(":")[0] for v in service["volumes"] if v.endswith(":/data")]
        volumes.update(data)
        assert len(data) == 1 and data[0] in manifests.compose("cluster")["volumes"]
    assert len(names) == len(volumes) == 3  # one name and one JetStream store per node


def test_the_compose_cluster_profile_gives_the_services_every_node_and_three_replicas() -> None:
    nats = compose_nats("cluster")
    for service in manifests.compose_pigeon_services("cluster").values():
        environment = service["environment"]
        if "PIGEON_NATS_URL" not in environment:
            continue  # the MCP gateway talks to the API only
        assert sorted(url_hosts(environment["PIGEON_NATS_URL"])) == sorted(
            (n, CLIENT_PORT) for n in nats
        )
        assert environment["PIGEON_JETSTREAM_REPLICAS"] == str(len(nats))
        waits = {n for n, c in service["depends_on"].items() if c["condition"] == "service_healthy"}
        assert set(nats) <= waits
    env = manifests.topology_env("cluster")
    assert env["COMPOSE_PROFILES"] == "cluster"


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
def test_compose_nats_stops_in_lame_duck_mode_within_its_grace_period(topology: str) -> None:
    for service in compose_nats(topology).values():
        conf = compose_conf(service)
        assert service["stop_signal"] == "SIGUSR2"  # nats-server's lame duck mode
        needed = seconds(conf_value(conf, "lame_duck_duration"))
        needed += seconds(conf_value(conf, "lame_duck_grace_period"))
        assert seconds(service["stop_grace_period"]) > needed
        assert "/healthz" in " ".join(service["healthcheck"]["test"])


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
def test_compose_services_stop_cleanly_and_run_locked_down(topology: str) -> None:
    for service in manifests.compose_pigeon_services(topology).values():
        assert service["stop_signal"] == "SIGTERM"
        assert seconds(service["stop_grace_period"]) >= 30
        assert service["init"] is True
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    senders = manifests.compose_pigeon_services(topology)["sender"]
    assert senders["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
def test_compose_publishes_only_the_public_services_and_on_loopback(topology: str) -> None:
    published = {
        name: service["ports"]
        for name, service in manifests.active_services(topology).items()
        if service.get("ports")
    }
    served = {
        manifests.served(manifests.active_services(topology)[n]["command"]) for n in published
    }
    assert served == PUBLIC_SERVICES
    for ports in published.values():
        for port in ports:
            assert port.startswith("127.0.0.1:"), port


# --- Kubernetes: NATS ------------------------------------------------------------------------


def nats_statefulset() -> Doc:
    return manifests.k8s_objects("StatefulSet")["nats"]


def nats_conf() -> str:
    conf: str = manifests.k8s_objects("ConfigMap")["nats-config"]["data"]["nats.conf"]
    return conf


def selects(selector: dict[str, str], pod_labels: dict[str, str]) -> bool:
    return selector.items() <= pod_labels.items()


def test_the_nats_statefulset_routes_every_pod_through_the_headless_service() -> None:
    nats = nats_statefulset()
    replicas = nats["spec"]["replicas"]
    assert replicas == 3
    headless = manifests.k8s_objects("Service")[nats["spec"]["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    labels = nats["spec"]["template"]["metadata"]["labels"]
    assert selects(headless["selector"], labels)
    service = nats["spec"]["serviceName"]
    expected = [(f"{NATS_PREFIX}-{i}.{service}", ROUTE_PORT) for i in range(replicas)]
    assert conf_routes(nats_conf().split("cluster {")[1]) == expected
    assert conf_value(nats_conf(), "server_name") == "$POD_NAME"
    assert "store_dir: /data" in nats_conf()
    claims = [c["metadata"]["name"] for c in nats["spec"]["volumeClaimTemplates"]]
    mounts = nats["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claims[0], "mountPath": "/data"} in mounts


def test_the_services_list_every_nats_pod_and_keep_three_replicas() -> None:
    nats = nats_statefulset()
    config = manifests.k8s_objects("ConfigMap")["pigeon"]["data"]
    service = nats["spec"]["serviceName"]
    assert url_hosts(config["PIGEON_NATS_URL"]) == [
        (f"{NATS_PREFIX}-{i}.{service}", CLIENT_PORT) for i in range(nats["spec"]["replicas"])
    ]
    assert config["PIGEON_JETSTREAM_REPLICAS"] == str(nats["spec"]["replicas"])


def test_nats_probes_follow_the_helm_chart() -> None:
    container = next(c for c in manifests.k8s_containers() if c.workload == "nats")
    assert container.http_probes() == {
        "startupProbe": ("/healthz", MONITOR_PORT),
        "readinessProbe": ("/healthz?js-server-only=true", MONITOR_PORT),
        "livenessProbe": ("/healthz?js-enabled-only=true", MONITOR_PORT),
    }
    assert conf_value(nats_conf(), "http_port") == str(MONITOR_PORT)


def test_nats_pods_leave_in_lame_duck_mode_one_at_a_time() -> None:
    nats = nats_statefulset()
    pod = nats["spec"]["template"]["spec"]
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["nats-server", "--signal", f"ldm={conf_value(nats_conf(), 'pid_file')}"]
    needed = seconds(conf_value(nats_conf(), "lame_duck_duration"))
    needed += seconds(conf_value(nats_conf(), "lame_duck_grace_period"))
    assert pod["terminationGracePeriodSeconds"] > needed
    budget = manifests.k8s_objects("PodDisruptionBudget")["nats"]["spec"]
    assert budget["maxUnavailable"] == 1
    assert selects(
        budget["selector"]["matchLabels"], nats["spec"]["template"]["metadata"]["labels"]
    )


# --- Kubernetes: the services ---------------------------------------------------------------


def test_every_service_pod_runs_non_root_read_only_with_resources() -> None:
    for service, container in manifests.k8s_pigeon_containers().items():
        pod = container.pod["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, service
        assert pod["terminationGracePeriodSeconds"] >= 30
        for spec in [container.spec, *pod.get("initContainers", [])]:
            assert spec["securityContext"]["readOnlyRootFilesystem"] is True
            assert spec["securityContext"]["allowPrivilegeEscalation"] is False
            assert spec["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        resources = container.spec["resources"]
        assert resources["requests"] and resources["limits"]["memory"]
        annotations = container.pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"


def test_the_services_behind_a_service_leave_its_endpoints_before_they_stop() -> None:
    containers = manifests.k8s_pigeon_containers()
    services = manifests.k8s_objects("Service")
    fronted = set()
    for name, service in services.items():
        for s, container in containers.items():
            if selects(service["spec"]["selector"], container.pod["metadata"]["labels"]):
                fronted.add(s)
                targets = {p["targetPort"] for p in service["spec"]["ports"]}
                assert targets <= {p["name"] for p in container.spec["ports"]}, name
    assert fronted == PUBLIC_SERVICES
    for public in fronted:
        assert "preStop" in containers[public].spec["lifecycle"]


def test_every_disruption_budget_selects_a_workload() -> None:
    pods = [c.pod["metadata"]["labels"] for c in manifests.k8s_containers()]
    for name, budget in manifests.k8s_objects("PodDisruptionBudget").items():
        assert any(selects(budget["spec"]["selector"]["matchLabels"], p) for p in pods), name


def test_the_tracker_scales_behind_the_ingress_at_the_public_base_url() -> None:
    deployment = manifests.k8s_objects("Deployment")["pigeon-tracker"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    hpa = manifests.k8s_objects("HorizontalPodAutoscaler")["pigeon-tracker"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "pigeon-tracker",
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    ingress = manifests.k8s_objects("Ingress")["pigeon-tracker"]["spec"]
    public = urlsplit(
        manifests.k8s_objects("ConfigMap")["pigeon"]["data"]["PIGEON_PUBLIC_BASE_URL"]
    )
    (rule,) = ingress["rules"]
    assert rule["host"] == public.hostname
    assert public.hostname in ingress["tls"][0]["hosts"] and public.scheme == "https"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"]["name"] == "pigeon-tracker"
    for prefix in (OPEN_PREFIX, CLICK_PREFIX, UNSUBSCRIBE_PREFIX):  # every tracking URL
        assert prefix.startswith(path["path"]) and path["pathType"] == "Prefix"
    assert "pigeon-tracker" in manifests.k8s_objects("Service")
    container = manifests.k8s_pigeon_containers()["tracker"]
    env = {e["name"]: e["value"] for e in container.spec["env"]}
    assert int(env["PIGEON_TRACKER_TRUSTED_PROXIES"]) >= 1  # the Ingress controller
