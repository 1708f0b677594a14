"""The monitoring files in deploy/ and the metrics catalog in docs/operations.md agree with
the metrics the services export (promtool is not installed here: the rule file is parsed
and every metric an expression names must exist)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import pigeon_api.metrics
import pigeon_common.metrics
import pigeon_imap_sync.metrics
import pigeon_mcp.metrics
import pigeon_projector.metrics
import pigeon_sender.metrics
import pigeon_tracker.metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "mc-pigeon-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"
METRIC_NAME = re.compile(r"\bpigeon_[a-z0-9_]+\b")
MODULES = (
    pigeon_common.metrics,
    pigeon_sender.metrics,
    pigeon_projector.metrics,
    pigeon_imap_sync.metrics,
    pigeon_tracker.metrics,
    pigeon_api.metrics,
    pigeon_mcp.metrics,
)
SERVICES = {"api", "projector", "sender", "tracker", "imap-sync", "mcp"}
ALERTED = {  # what the issue asks alerts for: a metric each must watch
    "projector lag": "pigeon_projector_lag_",
    "copies pending": "pigeon_projector_copies_pending",
    "SMTP errors": "pigeon_sender_",
    "imap-sync failing": "pigeon_imap_sync_runs_total",
    "tracker 5xx": "pigeon_tracker_requests_total",
}


def families() -> dict[str, str]:
    """Every pigeon_* metric family the services define: name -> type."""
    assert MODULES  # imported for their metrics, which register themselves
    return {
        family.name: family.type
        for family in REGISTRY.collect()
        if family.name.startswith("pigeon_")
    }


def sample_names() -> set[str]:
    """The names a query may use: a counter's `_total`, a histogram's series, a gauge."""
    names: set[str] = set()
    for name, kind in families().items():
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        else:
            names.add(name)
    return names


def _balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def test_metric_names_follow_prometheus_conventions() -> None:
    found = families()
    assert len(found) >= 20
    for name, kind in found.items():
        assert re.fullmatch(r"pigeon_[a-z][a-z0-9_]*", name), name
        if kind == "counter":
            assert not name.endswith("_total"), name  # the client adds it once
        if kind == "gauge" and ("seconds" in name or "timestamp" in name):
            assert name.endswith(("_seconds", "_timestamp_seconds")), name
        assert not name.endswith(("_ms", "_milliseconds", "_bytes_total_total")), name


def test_no_metric_has_a_per_recipient_or_per_campaign_label() -> None:
    metrics = [
        value
        for module in MODULES
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
    ]
    assert len(metrics) == len(families())
    for metric in metrics:
        name = metric._name  # prometheus-client keeps no public accessor for these two
        labels = set(metric._labelnames)
        assert not labels & {"recipient", "recipient_id", "email", "campaign", "campaign_id"}, (
            name,
            labels,
        )
        if "mailbox" in labels:  # the one entity label allowed: imap-sync's per mailbox
            assert name.startswith("pigeon_imap_sync_"), name


def test_alert_rules_parse_and_name_existing_metrics() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert rules
    known = sample_names()
    watched: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"Pigeon[A-Za-z0-9]+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        expr = str(rule["expr"])
        assert _balanced(expr), rule["alert"]
        named = set(METRIC_NAME.findall(expr))
        assert named or re.search(r"\bup\{", expr), rule["alert"]
        assert named <= known, (rule["alert"], named - known)
        watched |= named
        if re.search(r"\bup\{", expr):
            watched.add("up")
    assert "up" in watched  # service down
    for what, prefix in ALERTED.items():
        assert any(name.startswith(prefix) for name in watched), what
    assert len({rule["alert"] for rule in rules}) == len(rules)


def test_the_scrape_config_has_one_job_per_service() -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {f"pigeon-{service}" for service in SERVICES}
    assert config["rule_files"] == ["alerts.yml"]


def _dashboard_exprs(panels: list[dict[str, Any]]) -> list[str]:
    exprs: list[str] = []
    for panel in panels:
        exprs += [target["expr"] for target in panel.get("targets", [])]
        exprs += _dashboard_exprs(panel.get("panels", []))
    return exprs


def test_the_dashboard_queries_existing_metrics_and_shows_each_service() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "mc-pigeon" and dashboard["title"] == "MC Pigeon"
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    exprs = _dashboard_exprs(panels)
    known = sample_names()
    shown: set[str] = set()
    for expr in exprs:
        assert _balanced(expr), expr
        named = set(METRIC_NAME.findall(expr))
        assert named <= known, (expr, named - known)
        shown |= named
    # Every metric family is on the dashboard.
    for name in families():
        assert any(s == name or s.startswith(f"{name}_") for s in shown), name


def test_docs_list_every_metric() -> None:
    text = OPERATIONS.read_text()
    assert text.startswith("# Operations\n")
    assert "## Metrics" in text
    # The Metrics section only: elsewhere `pigeon_projector` is a package, not a metric.
    section = text[text.index("## Metrics") :]
    section = section.split("\n## ", 1)[0]
    documented = set(re.findall(r"`(pigeon_[a-z0-9_]+)", section))
    for name, kind in families().items():
        exported = f"{name}_total" if kind == "counter" else name
        assert exported in documented, exported
    assert documented <= sample_names() | set(families()), documented - sample_names()
