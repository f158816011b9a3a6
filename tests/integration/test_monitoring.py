"""Monitoring on a lab fleet: a real Prometheus on the coordinator scrapes real devices.

The shared fleet is provisioned (`fledge provision`), which deploys
monitoring with Prometheus on the coordinator, as lab inventories ask.
Prometheus, asked over its HTTP API on the coordinator, must report every
device's node exporter up, its SuperNode running and the fleet's Flower; a
stopped SuperNode must show as 0 within a timer period and a scrape. The
collection's monitoring playbook then changes nothing, nor in check mode; the
Grafana dashboard may only use metrics that this Prometheus has.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fledge
from fledge import inventory, ssh

from helpers import REPO, ansible_playbook, login, recap

pytestmark = pytest.mark.lab

DEVICES = ("pi-1", "pi-2")
HOSTS = ("coordinator", *DEVICES)
# In the lab the coordinator reaches each host by its name on the Docker
# network; ansible_host (127.0.0.1) is only the controller's way in.
LAB_VARS = json.dumps({"monitoring_scrape_address": "{{ inventory_hostname }}"})
# Metrics of hardware that containers do not have; their collectors must run.
HARDWARE_METRICS = {"node_thermal_zone_temp": "thermal_zone", "node_hwmon_temp_celsius": "hwmon"}
# A timer period and a scrape (the shared fleet's 10 s and 5 s, see
# helpers.SHARED_FLEET_VARS), and slack for a loaded machine.
METRIC_DELAY = 120


def monitoring_playbook(inventory_path: Path, *extra: str) -> dict[str, int]:
    """Run fledge.edge.monitoring as an operator would; return changed tasks per host."""
    result = ansible_playbook(inventory_path, "fledge.edge.monitoring", "-e", LAB_VARS, *extra)
    assert result.returncode == 0, result.stdout[-6000:]
    changed = {host: counters["changed"] for host, counters in recap(result.stdout).items()}
    assert set(changed) == set(HOSTS), changed
    return changed


def sh(fleet: inventory.Inventory, name: str, command: str) -> tuple[int, str, str]:
    host = next(h for h in fleet.hosts if h.name == name)
    with login(host) as client:
        return ssh.run(client, command, timeout=120)


# Runs on the coordinator: its Prometheus listens on loopback only.
_GET = (
    "import sys, urllib.parse, urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:9090/api/v1/' + sys.argv[1] + '?' "
    "+ urllib.parse.urlencode({'query': sys.argv[2]} if len(sys.argv) > 2 else {}), "
    "timeout=30).read().decode())"
)


def prometheus(fleet: inventory.Inventory, path: str, query: str | None = None) -> Any:
    """GET Prometheus' API on the coordinator; return its `data`."""
    args = [path] if query is None else [path, query]
    status, out, err = sh(fleet, "coordinator", shlex.join(["python3", "-c", _GET, *args]))
    assert status == 0, err
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    return answer["data"]


def by_instance(fleet: inventory.Inventory, query: str) -> dict[str, dict]:
    """An instant query's samples keyed by their instance label (one sample per host)."""
    result = prometheus(fleet, "query", query)["result"]
    samples = {s["metric"]["instance"]: s for s in result}
    assert len(samples) == len(result), result
    return samples


def wait_for(check: Callable[[], Any], timeout: float = METRIC_DELAY) -> Any:
    """Poll ``check`` until it returns something truthy or ``timeout`` passes (then assert)."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(5)
    assert result, f"not true within {timeout} s"
    return result


def values(fleet: inventory.Inventory, query: str) -> dict[str, str]:
    return {i: s["value"][1] for i, s in by_instance(fleet, query).items()}


def test_prometheus_scrapes_every_device(fleet: inventory.Inventory) -> None:
    wanted = {h: "1" for h in HOSTS}
    assert wait_for(lambda: values(fleet, 'up{job="fledge"}') == wanted or None)
    up = by_instance(fleet, 'up{job="fledge"}')
    assert {i: s["metric"]["role"] for i, s in up.items()} == {
        "coordinator": "superlink",
        "pi-1": "supernode",
        "pi-2": "supernode",
    }
    assert wait_for(
        lambda: (
            values(fleet, 'fledge_service_up{job="fledge",unit="fledge-supernode"}')
            == {d: "1" for d in DEVICES}
        )
    )
    assert values(fleet, 'fledge_service_up{job="fledge",unit="fledge-superlink"}') == {
        "coordinator": "1"
    }
    info = by_instance(fleet, 'fledge_info{job="fledge"}')
    flower = fleet.superlink.vars["flower_version"]
    assert {i: s["metric"]["flwr_version"] for i, s in info.items()} == dict.fromkeys(HOSTS, flower)
    assert {s["metric"]["fledge_version"] for s in info.values()} == {fledge.__version__}
    # The fleet CA (everywhere) and the SuperLink's certificate expire in the future.
    expiry = prometheus(fleet, "query", 'fledge_certificate_expiry_seconds{job="fledge"} - time()')[
        "result"
    ]
    paths = sorted((s["metric"]["instance"], s["metric"]["path"]) for s in expiry)
    tls = fleet.superlink.vars["_common_tls_dir"]
    assert paths == sorted(
        [(h, f"{tls}/ca.crt") for h in HOSTS] + [("coordinator", f"{tls}/superlink.crt")]
    )
    assert all(float(s["value"][1]) > 86400 for s in expiry)


def test_prometheus_is_not_reachable_from_the_devices(fleet: inventory.Inventory) -> None:
    """It listens on the coordinator's loopback only: it has no authentication."""
    probe = "import socket; socket.create_connection(('coordinator', 9090), timeout=5)"
    status, _, err = sh(fleet, "pi-1", shlex.join(["python3", "-c", probe]))
    assert status != 0 and "Connection refused" in err, err
    # ... while the devices' node exporters are open to the coordinator, by design.
    probe = "import socket; socket.create_connection(('pi-1', 9100), timeout=5)"
    assert sh(fleet, "coordinator", shlex.join(["python3", "-c", probe]))[0] == 0


def test_monitoring_playbook_after_provisioning_changes_nothing(fleet: inventory.Inventory) -> None:
    assert monitoring_playbook(fleet.path) == dict.fromkeys(HOSTS, 0)


def test_check_mode_changes_nothing(fleet: inventory.Inventory) -> None:
    assert monitoring_playbook(fleet.path, "--check") == dict.fromkeys(HOSTS, 0)


def test_a_stopped_supernode_is_reported(fleet: inventory.Inventory) -> None:
    query = 'fledge_service_up{job="fledge",unit="fledge-supernode"}'
    assert values(fleet, query) == {"pi-1": "1", "pi-2": "1"}
    try:
        status, _, err = sh(fleet, "pi-1", "sudo systemctl stop fledge-supernode")
        assert status == 0, err
        assert wait_for(lambda: values(fleet, query) == {"pi-1": "0", "pi-2": "1"} or None)
    finally:
        sh(fleet, "pi-1", "sudo systemctl start fledge-supernode")
    assert wait_for(lambda: values(fleet, query) == {"pi-1": "1", "pi-2": "1"} or None)


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression uses (functions, keywords and labels removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    words = re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", expr)
    return set(words) - {"and", "or", "unless", "bool", "offset"}


def test_dashboard_uses_only_metrics_that_exist(fleet: inventory.Inventory) -> None:
    dashboard = json.loads((REPO / "docs" / "grafana" / "fledge-fleet.json").read_text())
    assert dashboard["uid"] and dashboard["__inputs"][0]["pluginId"] == "prometheus"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = set().union(*map(_metric_names, exprs))
    assert {"up", "fledge_service_up", "fledge_info", "node_cpu_seconds_total"} <= used
    existing = set(prometheus(fleet, "label/__name__/values"))
    assert used - existing <= set(HARDWARE_METRICS), used - existing - set(HARDWARE_METRICS)
    # Temperatures are missing in containers only because they have no sensors:
    # their collectors run (on a Pi they report the SoC's temperature).
    query = 'node_scrape_collector_success{job="fledge",instance="pi-1"}'
    ran = {s["metric"]["collector"] for s in prometheus(fleet, "query", query)["result"]}
    assert set(HARDWARE_METRICS.values()) <= ran
    # Every expression parses and evaluates on the real Prometheus.
    for expr in exprs:
        prometheus(fleet, "query", expr)


def test_footprint_on_a_device(fleet: inventory.Inventory) -> None:
    """Measured, printed (pytest -s) and held to a Pi's budget."""
    status, out, err = sh(fleet, "pi-1", "ps -o rss= -C prometheus-node-exporter")
    assert status == 0, err
    exporter_mib = int(out.split()[0]) / 1024
    measure = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    paths = fleet.supernodes[0].vars
    command = shlex.join(
        [
            "sudo", "python3", "-c", measure,
            f"{paths['_common_venv']}/bin/python", f"{paths['_common_bin_dir']}/fledge-metrics",
            "--output", "/tmp/fledge-footprint.prom", "--fledge-version", fledge.__version__,
            "--unit", "fledge-supernode", "--certificate", paths["_common_ca_cert"],
        ]
    )  # fmt: skip
    status, out, err = sh(fleet, "pi-1", command)
    assert status == 0, err
    script_mib = int(out) / 1024
    duration = values(fleet, 'avg_over_time(scrape_duration_seconds{job="fledge"}[5m])')
    scrapes = ", ".join(f"{h} {float(s):.3f} s" for h, s in sorted(duration.items()))
    print(
        f"node exporter RSS {exporter_mib:.1f} MiB; metrics script peak RSS {script_mib:.1f} MiB;"
        f" scrape duration {scrapes}"
    )
    assert exporter_mib < 64 and script_mib < 64
    assert all(float(s) < 2 for s in duration.values())
