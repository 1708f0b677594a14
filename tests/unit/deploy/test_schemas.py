"""The deploy files are valid for the tools that read them: docker-compose.yml against the
Compose Specification's schema (as written, and after interpolation for each NATS
topology), every Kubernetes object against the Kubernetes API schemas (strict: an unknown
field fails), and every nats-server configuration as nats-server itself parses it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pigeon_embedded.nats import find_nats_server
from tests.unit.deploy import manifests
from tests.unit.deploy.manifests import Doc

# The oldest Kubernetes minor the manifests are meant for, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((manifests.SCHEMAS / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def compose_errors(document: Doc) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in compose_validator().iter_errors(document)
    ]


def test_the_compose_file_as_written_matches_the_compose_schema() -> None:
    assert compose_errors(manifests.raw_compose()) == []


@pytest.mark.parametrize("topology", manifests.TOPOLOGIES)
def test_the_compose_file_of_each_topology_matches_the_compose_schema(topology: str) -> None:
    assert compose_errors(manifests.compose(topology)) == []


def test_the_compose_schema_refuses_a_misspelt_service_field() -> None:
    document = manifests.compose("single")
    document["services"]["api"]["stop_grace_perod"] = "30s"
    document["services"]["sender"]["deploy"]["replicas"] = [3]
    errors = compose_errors(document)
    assert any("stop_grace_perod" in error for error in errors)
    assert any(error.startswith("services/sender/deploy/replicas") for error in errors)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifests.k8s_files(), ids=lambda p: p.name)
def test_every_kubernetes_object_matches_the_api_schema(path: Path, version: str) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_kubernetes_schemas_refuse_a_misspelt_field() -> None:
    tracker = copy.deepcopy(manifests.k8s_objects("Deployment")["pigeon-tracker"])
    container = tracker["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(tracker, KUBERNETES_VERSIONS[0], strict=True)


def test_the_kustomization_lists_every_manifest_and_only_those() -> None:
    kustomization = yaml.safe_load((manifests.K8S_DIR / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {path.name for path in manifests.k8s_files()}
    images = {image["name"] for image in kustomization["images"]}
    used = {container.spec["image"].split(":")[0] for container in manifests.k8s_containers()}
    assert "mc-pigeon" in images & used


def nats_configs() -> dict[str, tuple[str, dict[str, str]]]:
    """Every nats-server configuration of the deploy files: text and the environment its
    `$VARIABLES` come from."""
    configs = {
        f"compose/{path.name}": (path.read_text(), {"NATS_SERVER_NAME": "nats-1"})
        for path in sorted((manifests.COMPOSE_DIR / "nats").glob("*.conf"))
    }
    k8s = manifests.k8s_objects("ConfigMap")["nats-config"]["data"]["nats.conf"]
    configs["k8s/nats-config"] = (k8s, {"POD_NAME": "nats-0"})
    return configs


def nats_server_test(
    text: str, env: dict[str, str], folder: Path
) -> subprocess.CompletedProcess[str]:
    path = folder / "nats.conf"
    path.write_text(text)
    return subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(path)],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(nats_configs()))
def test_nats_server_accepts_each_configuration(name: str, tmp_path: Path) -> None:
    text, env = nats_configs()[name]
    result = nats_server_test(text, env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_nats_server_refuses_a_broken_configuration(tmp_path: Path) -> None:
    text, env = nats_configs()["k8s/nats-config"]
    result = nats_server_test(text.replace("jetstream {", "jetstreem {"), env, tmp_path)
    assert result.returncode != 0
    assert "jetstreem" in result.stdout + result.stderr
