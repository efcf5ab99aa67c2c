"""The Grafana dashboard and the Prometheus alert rules in ``deploy/``: valid for
Prometheus's own checker, the alerts fire (and stay quiet) on synthetic series, and every
metric they name is one the daemon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from connectord.metrics import Metrics

DEPLOY = Path(__file__).parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "connectord.json"
METRIC = re.compile(r"\b(connectord_[a-z_]+)")

# Grafana's variables, replaced by plain values so Prometheus can parse the queries.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$connector": ".*",
    "$instance": ".*",
}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is required (Debian's prometheus package; .ci/run installs it)")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def exported_series() -> set[str]:
    """Every sample name ``/metrics`` can serve, derived from the daemon's registry."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes[family.type]
    }


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool_check():
    result = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alerts_fire_on_synthetic_series_and_stay_quiet_otherwise():
    result = promtool("test", "rules", "alerts.test.yml", cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse_as_promql(tmp_path: Path):
    """promtool parses each query as a recording rule, with Grafana's variables filled."""
    rules = []
    for number, expr in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    (tmp_path / "dashboard.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]})
    )
    result = promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_named_is_exported():
    exported = exported_series()
    named = {
        name for expr in dashboard_queries() + rule_expressions() for name in METRIC.findall(expr)
    }
    assert named, "the dashboard and rules name no connectord metric"
    assert named <= exported, f"not exported: {sorted(named - exported)}"
    # Each exported family appears on the dashboard, so nothing the daemon measures is hidden.
    families = {family.name for family in Metrics().registry.collect()}
    shown = " ".join(dashboard_queries())
    assert {f for f in families if f not in shown} == set()


def test_dashboard_is_self_contained():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "connector", "instance"} <= variables
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
