"""Reading the deploy files as Compose and Kubernetes would: the compose file after its
`${VAR}` interpolation for each NATS topology, the Kubernetes documents of every manifest,
and what the tests compare across them (which service a container runs, its ports,
probes and `PIGEON_*` variables)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_DIR = ROOT / "deploy" / "compose"
K8S_DIR = ROOT / "deploy" / "k8s"
SCHEMAS = ROOT / "tests" / "data" / "schemas"

# The NATS topologies of docker-compose.yml: the variables each one starts with.
TOPOLOGIES = ("single", "cluster")
SERVE = "serve"
PIGEON_VARIABLE = re.compile(r"\bPIGEON_[A-Z0-9_]+\b")
# $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is `$`.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)

Doc = dict[str, Any]


class MissingVariableError(KeyError):
    """A `${NAME:?message}` whose variable is unset: Compose refuses the file."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a Compose env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def topology_env(topology: str) -> dict[str, str]:
    """The interpolation variables `docker compose` runs with for a topology."""
    if topology == "single":
        return {}
    return read_env_file(COMPOSE_DIR / f"{topology}.env")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: in every string value, after the YAML is read (so
    a substituted value stays a string, as Compose keeps it)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, str):
        return interpolate_text(value, env)
    return value


def interpolate_text(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution in one string."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        value = env.get(name)
        empty_counts = operator is not None and operator.startswith(":")
        missing = value is None or (empty_counts and value == "")
        if not missing:
            assert value is not None
            return value
        if operator is not None and operator.endswith("?"):
            raise MissingVariableError(f"{name}: {argument}")
        if operator is not None and operator.endswith("-"):
            return argument
        return ""

    return _INTERPOLATION.sub(substitute, text)


@cache
def _compose(topology: str | None) -> Doc:
    loaded: Doc = yaml.safe_load(COMPOSE_FILE.read_text())
    if topology is not None:
        interpolated: Doc = interpolate(loaded, topology_env(topology))
        return interpolated
    return loaded


def raw_compose() -> Doc:
    """docker-compose.yml as written (YAML anchors and merge keys resolved); a fresh copy."""
    return copy.deepcopy(_compose(None))


def compose(topology: str) -> Doc:
    """docker-compose.yml as `docker compose` reads it for a topology; a fresh copy."""
    return copy.deepcopy(_compose(topology))


def active_services(topology: str) -> dict[str, Doc]:
    """The services a topology starts: those without profiles and those of its profiles."""
    env = topology_env(topology)
    profiles = {p for p in env.get("COMPOSE_PROFILES", "").split(",") if p}
    services: dict[str, Doc] = compose(topology)["services"]
    return {
        name: service
        for name, service in services.items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


def served(args: list[str] | str | None) -> str | None:
    """The MC Pigeon service a `pigeon serve NAME` command line runs, else None."""
    if isinstance(args, list) and len(args) == 2 and args[0] == SERVE:
        return args[1]
    return None


def compose_pigeon_services(topology: str) -> dict[str, Doc]:
    """Compose service definitions by the MC Pigeon service they run."""
    found: dict[str, Doc] = {}
    for service in active_services(topology).values():
        name = served(service.get("command"))
        if name is not None:
            found[name] = service
    return found


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


@cache
def _k8s_documents() -> tuple[tuple[Path, Doc], ...]:
    return tuple(
        (path, doc)
        for path in k8s_files()
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    )


def k8s_documents() -> Iterator[tuple[Path, Doc]]:
    """Every Kubernetes object of the manifests, with its file (fresh copies)."""
    for path, doc in _k8s_documents():
        yield path, copy.deepcopy(doc)


def k8s_objects(kind: str) -> dict[str, Doc]:
    """The objects of one kind by name."""
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == kind}


@dataclass(frozen=True)
class Container:
    """One container of a workload's pod template."""

    workload: str
    pod: Doc
    spec: Doc

    @property
    def service(self) -> str | None:
        return served(self.spec.get("args"))

    def port_number(self, port: int | str) -> int:
        """A probe's port, by number or by the container port's name."""
        if isinstance(port, int):
            return port
        for declared in self.spec.get("ports", []):
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise LookupError(f"{self.workload}: no container port named {port!r}")

    def http_probes(self) -> dict[str, tuple[str, int]]:
        """startup/liveness/readiness probe -> (path, port number)."""
        found: dict[str, tuple[str, int]] = {}
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = self.spec.get(kind, {}).get("httpGet")
            if http is not None:
                found[kind] = (http["path"], self.port_number(http["port"]))
        return found


def k8s_containers() -> Iterator[Container]:
    """The main containers of every Deployment and StatefulSet."""
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in k8s_objects(kind).items():
            pod = workload["spec"]["template"]
            for spec in pod["spec"]["containers"]:
                yield Container(name, pod, spec)


def k8s_pigeon_containers() -> dict[str, Container]:
    """The containers that run an MC Pigeon service, by service."""
    return {c.service: c for c in k8s_containers() if c.service is not None}


def pigeon_variables_in(value: Any) -> set[str]:
    """Every `PIGEON_*` name in a loaded document (keys and values) or a text."""
    if isinstance(value, dict):
        names: set[str] = set()
        for key, item in value.items():
            names |= pigeon_variables_in(key) | pigeon_variables_in(item)
        return names
    if isinstance(value, list):
        return set().union(*(pigeon_variables_in(item) for item in value)) if value else set()
    if isinstance(value, str):
        return set(PIGEON_VARIABLE.findall(value))
    return set()
