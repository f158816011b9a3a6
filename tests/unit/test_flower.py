"""The flwr seam: metric parsing, the CLI's config, and flwr's answers (process mocked)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ansible_collections.fledge.edge.plugins.plugin_utils import files
from fledge import inventory
from fledge.errors import FledgeError
from fledge.flower import apps, cli
from fledge.flower.cli import FlwrResult
from fledge.flower.metrics import parse_round_metrics, waiting_for_nodes
from fledge.flower.records import RoundMetrics
from fledge.flower.superlink import SuperLink, connection_toml

# As `flwr log --show` prints it: colour codes from the ServerApp's logger.
GREEN_INFO = "\x1b[92mINFO \x1b[0m:      "

FLEDGE_LOG = "\n".join(
    [
        "Using SuperLink: fledge (127.0.0.1:18000)",
        f"{GREEN_INFO}Start `flwr-serverapp` process",
        f"{GREEN_INFO}[ROUND 1/2]",
        f"{GREEN_INFO}aggregate_train: Received 2 results and 0 failures",
        f"{GREEN_INFO}\t└──> Aggregated MetricRecord: {{'train_loss': 0.28}}",
        # A highlighted prefix, as a coloured log formatter would print it.
        f'{GREEN_INFO}\x1b[1mfledge-round\x1b[0m {{"round": 1, "nodes": 2, "train_loss": 0.28, '
        '"loss": 0.31, "accuracy": 0.944}',
        f"{GREEN_INFO}\t└──> Aggregated MetricRecord: {{'loss': 0.31, 'accuracy': 0.944}}",
        f"{GREEN_INFO}[ROUND 2/2]",
        "fledge-round {not json at all",
        'fledge-round {"round": "two", "accuracy": 0.5}',
        'fledge-round {"nodes": 2}',
        f'{GREEN_INFO}fledge-round {{"round": 2, "nodes": 1, "train_loss": 0.19, '
        '"loss": null, "accuracy": null}',
        "\x00\xff garbage ]]] {{",
    ]
)

# Flower's own strategy log, for apps that print no fledge-round lines.
STRATEGY_LOG = "\n".join(
    [
        f"{GREEN_INFO}Starting FedAvg strategy:",
        f"{GREEN_INFO}\t├── Number of rounds: 3",
        f"{GREEN_INFO}[ROUND 1/3]",
        f"{GREEN_INFO}configure_train: Sampled 2 nodes (out of 2)",
        f"{GREEN_INFO}aggregate_train: Received 2 results and 0 failures",
        f"{GREEN_INFO}\t└──> Aggregated MetricRecord: {{'train_loss': 0.67}}",
        f"{GREEN_INFO}configure_evaluate: Sampled 2 nodes (out of 2)",
        f"{GREEN_INFO}aggregate_evaluate: Received 2 results and 0 failures",
        f"{GREEN_INFO}\t└──> Aggregated MetricRecord: {{'loss': 0.52, 'accuracy': 0.86}}",
        f"{GREEN_INFO}[ROUND 2/3]",
        f"{GREEN_INFO}aggregate_train: Received 1 results and 1 failures",
        f"{GREEN_INFO}\t└──> Aggregated MetricRecord: {{'train_loss': 0.41}}",
        f"{GREEN_INFO}aggregate_evaluate: Received 1 results and 1 failures",
        # Flower's templates name their evaluation metrics like this.
        f"{GREEN_INFO}\t└──> Aggregated MetricRecord: {{'eval_loss': 0.4, 'eval_acc': 0.9}}",
        f"{GREEN_INFO}[ROUND 3/3]",
        f"{GREEN_INFO}configure_train: Sampled 2 nodes (out of 2)",
    ]
)


# --- parse_round_metrics ----------------------------------------------------


def test_fledge_round_lines_are_read_through_colour_codes_and_garbage() -> None:
    assert parse_round_metrics(FLEDGE_LOG) == [
        RoundMetrics(round=1, nodes=2, train_loss=0.28, loss=0.31, accuracy=0.944),
        RoundMetrics(round=2, nodes=1, train_loss=0.19, loss=None, accuracy=None),
    ]


def test_fledge_round_lines_win_over_the_strategy_log() -> None:
    # Both are in the digits app's log; the strategy's would give 2 nodes for round 2.
    rounds = parse_round_metrics(FLEDGE_LOG)
    assert [r.nodes for r in rounds] == [2, 1]


def test_a_repeated_round_keeps_its_last_report() -> None:
    log = 'fledge-round {"round": 1, "accuracy": 0.1}\nfledge-round {"round": 1, "accuracy": 0.7}'
    assert parse_round_metrics(log) == [RoundMetrics(round=1, accuracy=0.7)]


def test_strategy_log_is_the_fallback() -> None:
    assert parse_round_metrics(STRATEGY_LOG) == [
        RoundMetrics(round=1, nodes=2, train_loss=0.67, loss=0.52, accuracy=0.86),
        RoundMetrics(round=2, nodes=1, train_loss=0.41, loss=0.4, accuracy=0.9),
    ]  # round 3 has only begun: nothing to report yet


def test_strategy_log_with_train_results_only() -> None:
    log = (
        "[ROUND 1/1]\naggregate_train: Received 3 results and 0 failures\n"
        "\t└──> Aggregated MetricRecord: {'train_loss': 1.5}"
    )
    assert parse_round_metrics(log) == [RoundMetrics(round=1, nodes=3, train_loss=1.5)]


@pytest.mark.parametrize(
    "record", ["{'train_loss': nan_value}", "{'train_loss': 'high'}", "[1, 2]", "{broken"]
)
def test_unreadable_metric_records_are_skipped(record: str) -> None:
    log = f"[ROUND 1/1]\naggregate_train: Received 2 results\nAggregated MetricRecord: {record}"
    assert parse_round_metrics(log) == [RoundMetrics(round=1, nodes=2)]


@pytest.mark.parametrize("text", ["", "Using SuperLink: fledge (x:1)\n", "random\x1b[31m text"])
def test_no_rounds_in_a_log_without_any(text: str) -> None:
    assert parse_round_metrics(text) == []


WAITING = f"{GREEN_INFO}Waiting for nodes to connect: 1 connected (minimum required: 3)."


def test_a_strategy_waiting_for_devices_is_seen_in_its_last_line() -> None:
    assert waiting_for_nodes(f"{GREEN_INFO}[ROUND 1/2]\n{WAITING}\n\n") == (1, 3)


def test_a_wait_that_has_ended_is_not_a_wait() -> None:
    assert waiting_for_nodes(f"{WAITING}\n{GREEN_INFO}[ROUND 1/2]\n") is None
    assert waiting_for_nodes("") is None


# --- the connection ---------------------------------------------------------


def write_fleet(
    tmp_path: Path, superlink_vars: str = "", *, ca: bool = True
) -> inventory.Inventory:
    path = tmp_path / "fleet.yml"
    path.write_text(
        "all:\n  children:\n"
        "    superlink:\n      hosts:\n"
        f"        coordinator: {{ansible_host: 10.0.0.1{superlink_vars}}}\n"
        "    supernodes:\n      hosts:\n        pi-1:\n        pi-2:\n"
    )
    if ca:
        (tmp_path / ".fledge" / "pki").mkdir(parents=True)
        (tmp_path / ".fledge" / "pki" / "ca.crt").write_text("CA")
    return inventory.load(path)


def connect(fleet: inventory.Inventory, address: str = "127.0.0.1:18000") -> SuperLink:
    """As the operator's channel would, with its address (fledge.control)."""
    home = fleet.path.parent / ".fledge" / "flwr"
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return SuperLink.for_inventory(fleet, address, home)


def test_config_toml_names_the_fleet_connection_and_its_ca(tmp_path: Path) -> None:
    fl = connect(write_fleet(tmp_path))
    home = tmp_path / ".fledge" / "flwr"
    assert fl.flwr_home == home
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["superlink"]["default"] == "fledge"
    assert config["superlink"]["fledge"] == {
        "address": "127.0.0.1:18000",
        "root-certificates": str((tmp_path / ".fledge" / "pki" / "ca.crt").resolve()),
    }
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "config.toml").stat().st_mode) == 0o600
    assert not fl.insecure


def test_config_toml_escapes_odd_paths() -> None:
    text = connection_toml("[fd00::1]:9", Path('/tmp/a "b"\\c/ca.crt'))
    assert tomllib.loads(text)["superlink"]["fledge"] == {
        "address": "[fd00::1]:9",
        "root-certificates": '/tmp/a "b"\\c/ca.crt',
    }


@pytest.mark.parametrize("value", ["false", "no", "'false'"])
def test_fledge_tls_false_means_insecure_without_a_ca(tmp_path: Path, value: str) -> None:
    fl = connect(write_fleet(tmp_path, f", fledge_tls: {value}", ca=False))
    config = tomllib.loads((fl.flwr_home / "config.toml").read_text())
    assert config["superlink"]["fledge"] == {"address": "127.0.0.1:18000", "insecure": True}
    assert fl.insecure


def test_tls_stays_on_unless_switched_off(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "default").mkdir()
    assert write_fleet(tmp_path / "on", ", fledge_tls: true").tls
    assert write_fleet(tmp_path / "default").tls


def test_missing_ca_says_to_provision(tmp_path: Path) -> None:
    with pytest.raises(FledgeError) as caught:
        connect(write_fleet(tmp_path, ca=False))
    assert caught.value.path.name == "ca.crt"
    assert "fledge provision" in caught.value.fix


def test_config_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = write_fleet(tmp_path)
    connect(fleet)
    config = tmp_path / ".fledge" / "flwr" / "config.toml"
    before = config.read_text()

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError):
        connect(fleet, "127.0.0.1:19000")
    assert config.read_text() == before
    assert os.listdir(config.parent) == ["config.toml"]  # no half-written temp file left


# --- run_flwr: the one process --------------------------------------------


def test_run_flwr_sets_home_and_quiets_flwr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "flwr"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "print(json.dumps({'args': sys.argv[1:], 'env': {k: os.environ.get(k) for k in "
        "('FLWR_HOME', 'FLWR_DISABLE_UPDATE_CHECK', 'FLWR_TELEMETRY_ENABLED')}}))\n"
        "sys.exit(3)\n"
    )
    script.chmod(0o755)
    monkeypatch.setattr(cli, "flwr_executable", lambda: str(script))
    done = cli.run_flwr(["ls", "fledge"], tmp_path / "home", timeout=30)
    assert done.returncode == 3
    assert json.loads(done.stdout) == {
        "args": ["ls", "fledge"],
        "env": {
            "FLWR_HOME": str(tmp_path / "home"),
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
        },
    }


def test_flwr_is_taken_from_fledges_own_environment() -> None:
    expected = Path(sys.executable).parent / "flwr"
    assert expected.is_file(), "the dev venv has flwr installed next to python"
    assert cli.flwr_executable() == str(expected)


# --- flwr's answers (run_flwr mocked) ---------------------------------------


class Script:
    """Stands in for run_flwr: answers from a queue, remembers the calls."""

    def __init__(self, *answers: FlwrResult | BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], flwr_home: Path, timeout: float) -> FlwrResult:
        self.calls.append(list(args))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def ok(doc: dict) -> FlwrResult:
    return FlwrResult(0, json.dumps({"success": True, **doc}, indent=2), "")


RUN = {
    "run-id": "3093522671225500114",
    "federation-id": "@none/default",
    "fab-id": "fledge/fledge-digits",
    "fab-name": "fledge-digits",
    "fab-version": "1.0.0",
    "fab-hash": "590f4a1c",
    "status": "finished:completed",
    "status-details": "N/A",
    "elapsed": 27.45,
    "pending-at": "2026-11-28 10:25:32Z",
    "starting-at": "2026-11-28 10:25:32Z",
    "running-at": "2026-11-28 10:25:34Z",
    "finished-at": "2026-11-28 10:26:02Z",
    "network-traffic": {"inbound-bytes": 22940, "outbound-bytes": 40968, "total-bytes": 63908},
    "compute-time": {"serverapp-seconds": 27.4, "clientapp-seconds": 0.8, "total-seconds": 28.2},
}


@pytest.fixture
def fl(tmp_path: Path) -> SuperLink:
    return SuperLink(tmp_path / "flwr", "10.0.0.1:18000", tmp_path / "ca.crt")


def use(monkeypatch: pytest.MonkeyPatch, *answers: FlwrResult | BaseException) -> Script:
    script = Script(*answers)
    monkeypatch.setattr(cli, "run_flwr", script)
    return script


def test_run_info(fl: SuperLink, monkeypatch: pytest.MonkeyPatch) -> None:
    script = use(monkeypatch, ok({"runs": [RUN]}))
    info = fl.run_info("3093522671225500114")
    assert script.calls == [["ls", "fledge", "--run-id", "3093522671225500114", "--format", "json"]]
    assert info.completed and info.finished
    assert info.status_details is None  # flwr's "N/A"
    assert info.app == "fledge/fledge-digits==1.0.0"
    assert info.network_bytes == {"inbound": 22940, "outbound": 40968, "total": 63908}


@pytest.mark.parametrize(
    ("status", "finished", "completed"),
    [
        ("running", False, False),
        ("finished:failed", True, False),
        ("finished:stopped", True, False),
    ],
)
def test_run_states(
    fl: SuperLink, monkeypatch: pytest.MonkeyPatch, status: str, finished: bool, completed: bool
) -> None:
    use(monkeypatch, ok({"runs": [{**RUN, "status": status}]}))
    info = fl.run_info("1")
    assert (info.finished, info.completed) == (finished, completed)


def test_success_false_becomes_a_fledge_error_with_flwrs_reason(
    fl: SuperLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = (
        "Using SuperLink: fledge (127.0.0.1:28000)\n Displaying information for run ID 123..."
        "\n\n[code: 16] Run ID not found."
    )
    use(monkeypatch, FlwrResult(0, json.dumps({"success": False, "error-message": message}), ""))
    with pytest.raises(FledgeError, match=r"flwr ls failed: \[code: 16\] Run ID not found\.$"):
        fl.run_info("123")


def test_unreachable_superlink_names_the_address_and_the_ca(
    fl: SuperLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = "Using SuperLink: fledge\n\nConnection to the SuperLink is unavailable. Please check"
    use(monkeypatch, FlwrResult(0, json.dumps({"success": False, "error-message": message}), ""))
    with pytest.raises(FledgeError) as caught:
        fl.list_nodes()
    assert "10.0.0.1:18000" in caught.value.fix and "ca.crt" in caught.value.fix
    assert "systemctl status fledge-superlink" in caught.value.fix


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [("", "Traceback (most recent call last):\n  boom"), ("not json {", ""), ("[1, 2]", "")],
)
def test_output_without_json_is_an_error(
    fl: SuperLink, monkeypatch: pytest.MonkeyPatch, stdout: str, stderr: str
) -> None:
    use(monkeypatch, FlwrResult(1, stdout, stderr))
    with pytest.raises(FledgeError, match="printed no JSON"):
        fl.list_runs()


def test_json_after_other_output_is_found(fl: SuperLink, monkeypatch: pytest.MonkeyPatch) -> None:
    noise = "SuperLink configuration not found. Created default configuration\n"
    use(monkeypatch, FlwrResult(0, noise + ok({"nodes": []}).stdout, ""))
    assert fl.list_nodes() == []


def test_unexpected_json_shape_is_an_error(fl: SuperLink, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, ok({"runs": [{"run-id": "1"}]}))
    with pytest.raises(FledgeError, match="unexpected answer"):
        fl.list_runs()


def test_hanging_flwr_is_an_error(fl: SuperLink, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, subprocess.TimeoutExpired(["flwr"], 120))
    with pytest.raises(FledgeError, match="no answer"):
        fl.stop_run("1")


def test_nodes(fl: SuperLink, monkeypatch: pytest.MonkeyPatch) -> None:
    node = {
        "node-id": "8356",
        "owner-name": "none",
        "status": "online",
        "online-at": "2026-11-28 10:25:23Z",
        "offline-at": "N/A",
    }
    use(monkeypatch, ok({"nodes": [node, {**node, "node-id": "9", "status": "offline"}]}))
    nodes = fl.list_nodes()
    assert [(n.node_id, n.online, n.offline_at) for n in nodes] == [
        ("8356", True, None),
        ("9", False, None),
    ]


def test_run_log_returns_the_text(fl: SuperLink, monkeypatch: pytest.MonkeyPatch) -> None:
    script = use(monkeypatch, FlwrResult(0, FLEDGE_LOG, ""))
    # Without flwr's own line: the ServerApp's log only.
    assert fl.run_log("7") == FLEDGE_LOG.split("\n", 1)[1]
    assert script.calls == [["log", "7", "fledge", "--show"]]


def test_run_log_is_empty_while_the_superlink_holds_the_request(
    fl: SuperLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, subprocess.TimeoutExpired(["flwr"], cli.LOG_TIMEOUT))
    assert fl.run_log("7") == ""


def test_run_log_failure_reads_flwrs_error_panel(
    fl: SuperLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = (
        "\x1b[92mINFO \x1b[0m:      Printing logstream for run_id `123`\n"
        "╭─ Error ──────────────╮\n│ [code: 16] Run ID not found. │\n╰──────────────────────╯\n"
    )
    use(monkeypatch, FlwrResult(1, "Using SuperLink: fledge\n", panel))
    with pytest.raises(FledgeError, match=r"flwr log failed: \[code: 16\] Run ID not found\.$"):
        fl.run_log("123")


# --- apps -------------------------------------------------------------------


def test_start_run_hands_flwr_a_copy_of_the_app(
    fl: SuperLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "myapp"
    (app / "pkg" / "__pycache__").mkdir(parents=True)
    (app / "pyproject.toml").write_text("[tool.flwr.app]\n")
    (app / "pkg" / "server.py").write_text("app = 1\n")
    (app / "pkg" / "__pycache__" / "server.pyc").write_bytes(b"\0")
    seen: dict[str, set[str]] = {}

    def fake(args: list[str], flwr_home: Path, timeout: float) -> FlwrResult:
        staged = Path(args[1])
        seen[str(staged)] = {str(p.relative_to(staged)) for p in staged.rglob("*")}
        (staged / "pkg" / "__pycache__").mkdir()  # flwr writes into the dir it is given
        seen["args"] = set(args[2:])
        return ok({"run-id": "42"})

    monkeypatch.setattr(cli, "run_flwr", fake)
    run_id = fl.start_run(app, {"num-server-rounds": 2, "min-nodes": 3, "name": 'a "b"'})
    assert run_id == "42"
    (staged,) = [key for key in seen if key != "args"]
    assert Path(staged) != app and Path(staged).name == "myapp"
    assert not Path(staged).exists()  # removed afterwards
    assert seen[staged] == {"pyproject.toml", "pkg", "pkg/server.py"}
    assert {"num-server-rounds=2", "min-nodes=3", 'name="a \\"b\\""', "fledge"} <= seen["args"]
    assert sorted(str(p.relative_to(app)) for p in app.rglob("*")) == [
        "pkg",
        "pkg/__pycache__",
        "pkg/__pycache__/server.pyc",
        "pkg/server.py",
        "pyproject.toml",
    ]


def test_the_packaged_app_declares_what_fledge_overrides() -> None:
    config = apps.read_app_config(apps.default_app())
    assert {"num-server-rounds", "min-nodes"} <= set(config)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "pyproject.toml is missing"),
        ("[project]\nname = 'x'\n", "[tool.flwr.app] is missing"),
        ("[tool.flwr.app\n", "not valid TOML"),
    ],
)
def test_not_a_flower_app(tmp_path: Path, content: str | None, words: str) -> None:
    if content is not None:
        (tmp_path / "pyproject.toml").write_text(content)
    with pytest.raises(FledgeError, match=words.replace("[", r"\[")):
        apps.read_app_config(tmp_path)
