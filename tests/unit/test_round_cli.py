"""`fledge round` through CliRunner, with a fake flwr at the seam (fledge.flower.cli.run_flwr)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ansible_collections.fledge.edge.plugins.plugin_utils import registry
from fledge import results
from fledge.errors import FledgeError
from fledge.flower import cli, follow
from fledge.flower.cli import FlwrResult
from fledge.main import app

runner = CliRunner()
RUN_ID = "3093522671225500114"


def round_line(n: int, accuracy: float) -> str:
    report = {"round": n, "nodes": 2, "train_loss": 0.5 / n, "loss": 0.6 / n, "accuracy": accuracy}
    return f"\x1b[92mINFO \x1b[0m:      fledge-round {json.dumps(report)}\n"


class FakeFlwr:
    """A SuperLink as the flwr CLI shows it: each `flwr ls --run-id` moves the run on.

    ``stages`` are (status, log) pairs; the last one repeats.
    """

    def __init__(
        self, stages: list[tuple[str, str]], online: int = 2, details: str = "N/A"
    ) -> None:
        self.stages = stages
        self.stage = -1
        self.online = online
        self.details = details
        self.calls: list[list[str]] = []
        self.stopped = False
        self.interrupt_on_poll: int | None = None

    def __call__(self, args: list[str], flwr_home: Path, timeout: float) -> FlwrResult:
        self.calls.append(list(args))
        command = args[0] if args[0] != "supernode" else "supernode " + args[1]
        return getattr(self, command.replace(" ", "_"))(args)

    def status(self) -> str:
        return "finished:stopped" if self.stopped else self.stages[max(self.stage, 0)][0]

    def run_doc(self) -> dict:
        return {
            "run-id": RUN_ID,
            "fab-id": "fledge/fledge-digits",
            "fab-version": "1.0.0",
            "status": self.status(),
            "status-details": self.details,
            "elapsed": 31.5,
            "pending-at": "2026-11-28 10:25:32Z",
            "finished-at": "N/A",
            "network-traffic": {"inbound-bytes": 22940, "outbound-bytes": 40968},
        }

    def ls(self, args: list[str]) -> FlwrResult:
        if "--run-id" in args:
            self.stage = min(self.stage + 1, len(self.stages) - 1)
            if self.interrupt_on_poll == self.stage:
                raise KeyboardInterrupt
        return self.ok({"runs": [self.run_doc()]})

    def supernode_ls(self, args: list[str]) -> FlwrResult:
        nodes = [
            {
                "node-id": str(i),
                "status": "online",
                "online-at": "2026-11-28 10:00:00Z",
                "offline-at": "N/A",
            }
            for i in range(self.online)
        ]
        nodes.append(
            {
                "node-id": "99",
                "status": "offline",
                "online-at": "N/A",
                "offline-at": "2026-11-28 09:00:00Z",
            }
        )
        return self.ok({"nodes": nodes})

    def run(self, args: list[str]) -> FlwrResult:
        return self.ok({"run-id": RUN_ID})

    def log(self, args: list[str]) -> FlwrResult:
        return FlwrResult(0, "Using SuperLink: fledge\n" + self.stages[max(self.stage, 0)][1], "")

    def stop(self, args: list[str]) -> FlwrResult:
        self.stopped = True
        return self.ok({"run-id": args[1]})

    @staticmethod
    def ok(doc: dict) -> FlwrResult:
        return FlwrResult(0, json.dumps({"success": True, **doc}), "")

    def overrides(self) -> list[str]:
        (run,) = [c for c in self.calls if c[0] == "run"]
        return [run[i + 1] for i, arg in enumerate(run) if arg == "-c"]


class FakeTime:
    """A clock that moves only when fledge sleeps, so polls and timeouts cost nothing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


LOG_1 = round_line(1, 0.90)
LOG_2 = LOG_1 + round_line(2, 0.95)
COMPLETES = [
    ("pending", ""),
    ("running", ""),
    ("running", LOG_1),
    ("running", LOG_2),
    ("finished:completed", LOG_2),
]


@pytest.fixture(autouse=True)
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    clock = FakeTime()
    monkeypatch.setattr(follow, "time", clock)
    yield clock


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(
        "all:\n  children:\n"
        "    superlink:\n      hosts:\n"
        # A coordinator that is this machine: fledge dials its loopback, no SSH.
        "        coordinator: {ansible_host: 127.0.0.1, ansible_connection: local,\n"
        "                      superlink_local_port: 18000}\n"
        "    supernodes:\n      hosts:\n        pi-1:\n        pi-2:\n"
    )
    (tmp_path / ".fledge" / "pki").mkdir(parents=True)
    (tmp_path / ".fledge" / "pki" / "ca.crt").write_text("CA")
    return path


class FakeHosts:
    """The hosts' run directories: what `results.fetch_run_dir` would copy over SSH."""

    def __init__(self) -> None:
        self.files = {"coordinator": {"final_model.npz": b"model"}}
        self.calls: list[tuple[str, str, list[str] | None]] = []
        self.error: str | None = None

    def __call__(self, host, runs_dir_var: str, run_id: str, dest: Path, members=None) -> list[str]:
        self.calls.append((host.name, runs_dir_var, members))
        if self.error:
            raise FledgeError(self.error, host=host.name)
        names = [n for n in self.files.get(host.name, {}) if members is None or n in members]
        for name in names:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(self.files[host.name][name])
        return names


@pytest.fixture(autouse=True)
def hosts(monkeypatch: pytest.MonkeyPatch) -> FakeHosts:
    fake = FakeHosts()
    monkeypatch.setattr(results, "fetch_run_dir", fake)
    return fake


def use(monkeypatch: pytest.MonkeyPatch, fake: FakeFlwr) -> FakeFlwr:
    monkeypatch.setattr(cli, "run_flwr", fake)
    return fake


def fledge(*args: object):
    return runner.invoke(app, [str(a) for a in args])


# --- start ------------------------------------------------------------------


def test_completed_run_exits_0_with_one_json_document(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES))
    result = fledge("round", "start", "-i", fleet, "--rounds", 2, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # the whole of stdout is one document
    assert doc == {
        "run_id": RUN_ID,
        "status": "finished:completed",
        "status_details": None,
        "app": "fledge/fledge-digits==1.0.0",
        "rounds": [
            {"round": 1, "nodes": 2, "train_loss": 0.5, "loss": 0.6, "accuracy": 0.9},
            {"round": 2, "nodes": 2, "train_loss": 0.25, "loss": 0.3, "accuracy": 0.95},
        ],
        "elapsed_seconds": 31.5,
        "network_bytes": {"inbound": 22940, "outbound": 40968, "total": 63908},
        "pending_at": "2026-11-28 10:25:32Z",
        "finished_at": None,
        "stopped_by": None,
        "config": {"num-server-rounds": 2, "min-nodes": 2},
        "files": ["final_model.npz"],
        "files_error": None,
        "results": str(fleet.parent / ".fledge" / "runs" / RUN_ID),
    }
    assert fake.overrides() == ["num-server-rounds=2", "min-nodes=2"]
    # Each round is shown once, as it appears, on stderr.
    assert result.stderr.count("round 1/2:") == 1 and result.stderr.count("round 2/2:") == 1
    assert not fake.stopped


def test_no_log_is_asked_for_before_the_run_is_running(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(
        monkeypatch, FakeFlwr([("pending", ""), ("starting", ""), ("finished:completed", LOG_1)])
    )
    assert fledge("round", "start", "-i", fleet).exit_code == 0
    polls = [c[0] for c in fake.calls if c[0] in ("ls", "log")]
    assert polls == ["ls", "ls", "ls", "log"]  # one final log, after the run ended


def test_text_output_has_a_round_table_and_a_summary(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeFlwr(COMPLETES))
    result = fledge("round", "start", "-i", fleet)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # people's output goes to stderr
    for words in (
        "train loss",
        "95.0%",
        "0.3000",
        RUN_ID,
        "finished:completed",
        "32 s",
        "22.9 kB in, 41.0 kB out",
    ):
        assert words in result.stderr


@pytest.mark.parametrize("status", ["finished:failed", "finished:stopped"])
def test_a_run_that_did_not_complete_exits_1(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    use(
        monkeypatch,
        FakeFlwr(
            [("running", LOG_1), (status, LOG_1)], details="ServerApp failed with exception: boom"
        ),
    )
    result = fledge("round", "start", "-i", fleet, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == status
    assert doc["status_details"] == "ServerApp failed with exception: boom"
    assert [r["round"] for r in doc["rounds"]] == [1]


def test_failure_details_are_shown_to_people(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr([("finished:failed", "")], details="ServerApp failed: boom"))
    result = fledge("round", "start", "-i", fleet)
    assert result.exit_code == 1
    assert "ServerApp failed: boom" in result.stderr and "No round finished" in result.stderr


def test_too_few_devices_online_is_refused_before_starting(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES, online=1))
    result = fledge("round", "start", "-i", fleet, "--format", "json")
    assert result.exit_code == 1
    assert "--min-nodes" in json.loads(result.stdout)["fix"]  # the error, for programs
    message = " ".join(result.stderr.split())
    assert "only 1 devices are connected" in message and "needs 2" in message
    assert "systemctl status fledge-supernode" in message
    assert "journalctl -u fledge-supernode" in message
    assert "--min-nodes" in message
    assert not [c for c in fake.calls if c[0] == "run"]


def test_min_nodes_lowers_the_bar_and_reaches_the_app(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES, online=1))
    result = fledge("round", "start", "-i", fleet, "--min-nodes", 1)
    assert result.exit_code == 0, result.output
    assert fake.overrides() == ["min-nodes=1"]  # rounds: the app's own default


def test_min_nodes_above_the_online_count_is_refused(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeFlwr(COMPLETES, online=2))
    result = fledge("round", "start", "-i", fleet, "--min-nodes", 3)
    assert result.exit_code == 1
    assert "needs 3 (--min-nodes)" in " ".join(result.stderr.split())


def write_app(tmp_path: Path, config: str) -> Path:
    app_dir = tmp_path / "other-app"
    app_dir.mkdir()
    (app_dir / "pyproject.toml").write_text(f"[tool.flwr.app]\npublisher = 'x'\n{config}")
    return app_dir


def test_overrides_only_for_keys_the_app_declares(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES))
    app_dir = write_app(tmp_path, "[tool.flwr.app.config]\nnum-server-rounds = 5\n")
    result = fledge("round", "start", "-i", fleet, "--app", app_dir, "--rounds", 2)
    assert result.exit_code == 0, result.output
    assert fake.overrides() == ["num-server-rounds=2"]


def test_rounds_for_an_app_without_num_server_rounds_is_an_error(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES))
    app_dir = write_app(tmp_path, "[tool.flwr.app.config]\nepochs = 1\n")
    result = fledge("round", "start", "-i", fleet, "--app", app_dir, "--rounds", 2)
    assert result.exit_code == 1
    assert "num-server-rounds" in result.stderr and "pyproject.toml" in result.stderr
    assert fake.calls == []  # refused before asking the SuperLink anything


def test_an_app_whose_pyproject_is_not_utf8_is_named(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES))
    app_dir = write_app(tmp_path, "# caf\xe9\n")
    pyproject = app_dir / "pyproject.toml"
    pyproject.write_bytes(pyproject.read_text().encode("latin-1"))
    result = fledge("round", "start", "-i", fleet, "--app", app_dir)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"{pyproject}:3" in result.stderr and "not UTF-8" in result.stderr
    assert "save it as UTF-8" in result.stderr
    assert fake.calls == []


def test_rounds_of_other_apps_come_from_flowers_log(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = (
        "[ROUND 1/1]\naggregate_train: Received 2 results and 0 failures\n"
        "\t└──> Aggregated MetricRecord: {'train_loss': 0.7}\n"
        "aggregate_evaluate: Received 2 results and 0 failures\n"
        "\t└──> Aggregated MetricRecord: {'eval_loss': 0.5, 'eval_acc': 0.8}\n"
    )
    use(monkeypatch, FakeFlwr([("running", log), ("finished:completed", log)]))
    app_dir = write_app(tmp_path, "")
    result = fledge("round", "start", "-i", fleet, "--app", app_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rounds"] == [
        {"round": 1, "nodes": 2, "train_loss": 0.7, "loss": 0.5, "accuracy": 0.8}
    ]


def test_timeout_stops_the_run(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    fake = use(monkeypatch, FakeFlwr([("running", LOG_1)]))
    result = fledge("round", "start", "-i", fleet, "--timeout", 10, "--format", "json")
    assert result.exit_code == follow.EXIT_TIMEOUT
    assert fake.stopped
    doc = json.loads(result.stdout)
    assert doc["status"] == "finished:stopped" and len(doc["rounds"]) == 1
    assert 10 <= fake_time.now - 1000 < 10 + 2 * follow.POLL_SECONDS
    assert "--timeout" in result.stderr


def waiting_line(connected: int, required: int) -> str:
    return (
        "\x1b[92mINFO \x1b[0m:      Waiting for nodes to connect: "
        f"{connected} connected (minimum required: {required}).\n"
    )


def test_a_run_waiting_for_absent_devices_is_stopped_after_node_wait(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    # The app asks for more devices than --min-nodes told fledge (its own setting).
    fake = use(monkeypatch, FakeFlwr([("running", waiting_line(2, 3))]))
    result = fledge("round", "start", "-i", fleet, "--node-wait", 30, "--format", "json")
    assert result.exit_code == follow.EXIT_TOO_FEW_NODES
    assert fake.stopped
    assert json.loads(result.stdout)["status"] == "finished:stopped"
    assert "waited 30 s for 3 devices; 2 are connected" in result.stderr
    assert 30 <= fake_time.now - 1000 < 30 + 2 * follow.POLL_SECONDS


def test_a_wait_that_ends_in_time_does_not_stop_the_run(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = [("running", waiting_line(1, 2))] * 5
    fake = use(monkeypatch, FakeFlwr([("pending", ""), *waits, *COMPLETES[2:]]))
    result = fledge("round", "start", "-i", fleet, "--node-wait", 30)
    assert result.exit_code == 0, result.output
    assert not fake.stopped


def test_ctrl_c_stops_the_run(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES))
    fake.interrupt_on_poll = 2
    result = fledge("round", "start", "-i", fleet, "--format", "json")
    assert result.exit_code == follow.EXIT_INTERRUPTED
    assert fake.stopped
    assert json.loads(result.stdout)["status"] == "finished:stopped"


def test_the_outcome_comes_from_the_superlink_even_after_a_timeout(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run completed just as the timeout hit: stopping fails, the run counts.
    fake = use(
        monkeypatch,
        FakeFlwr([("running", LOG_1), ("running", LOG_1), ("finished:completed", LOG_2)]),
    )
    fake.stop = lambda args: FlwrResult(  # type: ignore[method-assign]
        0, json.dumps({"success": False, "error-message": "\n\nRun is already finished."}), ""
    )
    result = fledge("round", "start", "-i", fleet, "--timeout", 1)
    assert result.exit_code == 0, result.output
    assert "passed --timeout" in result.stderr and "Run is already finished" in result.stderr
    assert "round 2/3" in result.stderr


def test_missing_ca_is_reported_before_flwr_runs(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use(monkeypatch, FakeFlwr(COMPLETES))
    (fleet.parent / ".fledge" / "pki" / "ca.crt").unlink()
    result = fledge("round", "start", "-i", fleet)
    assert result.exit_code == 1
    assert "fledge provision" in result.stderr and fake.calls == []


@pytest.mark.parametrize("command", [["round", "nodes"], ["round", "list"], ["inventory", "check"]])
def test_fledge_tls_false_warns_on_every_command(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    use(monkeypatch, FakeFlwr(COMPLETES))
    fleet.write_text(
        fleet.read_text().replace(
            "superlink_local_port: 18000", "superlink_local_port: 18000, fledge_tls: false"
        )
    )
    result = fledge(*command, "-i", fleet)
    assert result.exit_code == 0, result.output
    assert "this fleet is open" in " ".join(result.stderr.split())


# --- results ----------------------------------------------------------------


def test_every_run_leaves_a_results_folder(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, hosts: FakeHosts
) -> None:
    use(monkeypatch, FakeFlwr(COMPLETES))
    result = fledge("round", "start", "-i", fleet)
    assert result.exit_code == 0, result.output
    folder = fleet.parent / ".fledge" / "runs" / RUN_ID
    assert hosts.calls == [("coordinator", "_superlink_runs_dir", None)]
    assert (folder / "files" / "final_model.npz").read_bytes() == b"model"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished:completed" and summary["files"] == ["final_model.npz"]
    assert [r["accuracy"] for r in json.loads((folder / "rounds.json").read_text())] == [0.9, 0.95]
    assert (folder / "rounds.csv").read_text().splitlines() == [
        "round,nodes,train_loss,loss,accuracy",
        "1,2,0.5,0.6,0.9",
        "2,2,0.25,0.3,0.95",
    ]
    assert (folder / "metrics.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    log = (folder / "serverapp.log").read_text()
    assert "fledge-round" in log and "\x1b[" not in log  # colour codes are gone
    assert f"Results: {folder}" in "".join(result.stderr.split("\n"))


def test_a_run_without_metrics_has_no_chart(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr([("running", "hello\n"), ("finished:completed", "hello\n")]))
    assert fledge("round", "start", "-i", fleet).exit_code == 0
    folder = fleet.parent / ".fledge" / "runs" / RUN_ID
    assert (folder / "summary.json").is_file() and not (folder / "metrics.png").exists()
    assert (folder / "serverapp.log").read_text() == "hello\n"


def test_a_failed_run_shows_the_end_of_its_log(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = "".join(f"line {i}\n" for i in range(40)) + "ValueError: bad model\n"
    use(monkeypatch, FakeFlwr([("running", lines), ("finished:failed", lines)]))
    result = fledge("round", "start", "-i", fleet)
    assert result.exit_code == 1
    assert "ValueError: bad model" in result.stderr and "line 30" in result.stderr
    assert "line 10\n" not in result.stderr  # only the last lines
    assert "41 lines in all" in result.stderr and "Results:" in result.stderr


def test_files_that_cannot_be_fetched_leave_the_outcome_alone(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, hosts: FakeHosts
) -> None:
    hosts.error = "sudo asks for a password"
    use(monkeypatch, FakeFlwr(COMPLETES))
    result = fledge("round", "start", "-i", fleet, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["files"] == [] and "sudo asks for a password" in doc["files_error"]
    assert "were not fetched" in fledge("round", "show", RUN_ID, "-i", fleet).stderr


def test_show_prints_a_runs_summary_again(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr(COMPLETES))
    started = json.loads(fledge("round", "start", "-i", fleet, "--format", "json").stdout)
    shown = fledge("round", "show", RUN_ID, "-i", fleet, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == started
    text = fledge("round", "show", RUN_ID, "-i", fleet).stderr
    assert "95.0%" in text and "finished:completed" in text and "metrics.png" in text


def test_show_a_run_without_results_says_why(fleet: Path) -> None:
    result = fledge("round", "show", 123, "-i", fleet)
    assert result.exit_code == 1
    assert "run 123 has no results folder" in result.stderr and "round logs" in result.stderr


def test_list_says_which_runs_have_results(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr(COMPLETES))
    before = json.loads(fledge("round", "list", "-i", fleet, "--format", "json").stdout)
    assert before["runs"][0]["results"] is None
    fledge("round", "start", "-i", fleet)
    after = json.loads(fledge("round", "list", "-i", fleet, "--format", "json").stdout)
    assert after["runs"][0]["results"] == str(fleet.parent / ".fledge" / "runs" / RUN_ID)


def test_logs_prints_the_serverapp_log(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr([("finished:completed", LOG_2)]))
    result = fledge("round", "logs", RUN_ID, "-i", fleet)
    assert result.exit_code == 0, result.output
    assert result.stdout == LOG_2


def test_logs_follow_prints_each_line_once_until_the_run_ends(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fledge.commands.round.time", follow.time)  # the fake clock
    stages = [
        ("running", LOG_1),
        ("running", ""),
        ("running", LOG_2),
        ("finished:completed", LOG_2),
    ]
    # The fake moves on at each `ls --run-id`: one before the loop, one per poll.
    use(monkeypatch, FakeFlwr([stages[0], *stages]))
    result = fledge("round", "logs", RUN_ID, "-i", fleet, "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout == LOG_2


def test_fetch_copies_named_device_files_into_the_results_folder(
    fleet: Path, hosts: FakeHosts
) -> None:
    hosts.files["pi-2"] = {"report.txt": b"device 2", "data.csv": b"private"}
    result = fledge("round", "fetch", RUN_ID, "pi-2", "report.txt", "-i", fleet)
    assert result.exit_code == 0, result.output
    folder = fleet.parent / ".fledge" / "runs" / RUN_ID / "devices" / "pi-2"
    assert (folder / "report.txt").read_bytes() == b"device 2"
    assert not (folder / "data.csv").exists()  # only what was named
    assert hosts.calls == [("pi-2", "_supernode_runs_dir", ["report.txt"])]


@pytest.mark.parametrize("path", ["../secrets", "/etc/shadow", "a/../../b", ""])
def test_fetch_refuses_paths_outside_the_runs_directory(
    fleet: Path, hosts: FakeHosts, path: str
) -> None:
    result = fledge("round", "fetch", RUN_ID, "pi-1", path, "-i", fleet)
    assert result.exit_code == 1 and "inside the run's directory" in result.stderr
    assert hosts.calls == []


def test_fetch_from_an_unknown_host_names_the_fleets_hosts(fleet: Path) -> None:
    result = fledge("round", "fetch", RUN_ID, "pi-9", "x", "-i", fleet)
    assert result.exit_code == 1
    assert "no host 'pi-9'" in result.stderr and "coordinator, pi-1, pi-2" in result.stderr


# --- list, stop, nodes ------------------------------------------------------


def test_list_runs_as_json(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr([("finished:completed", "")]))
    result = fledge("round", "list", "-i", fleet, "--format", "json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["run_id"] == RUN_ID and run["status"] == "finished:completed"


def test_list_runs_as_text(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr([("running", "")]))
    result = fledge("round", "list", "-i", fleet)
    assert result.exit_code == 0 and RUN_ID in result.stderr and "running" in result.stderr


def test_stop(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use(monkeypatch, FakeFlwr([("running", "")]))
    result = fledge("round", "stop", RUN_ID, "-i", fleet)
    assert result.exit_code == 0, result.output
    assert fake.calls == [["stop", RUN_ID, "fledge", "--format", "json"]]


def test_stop_a_finished_run_fails(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use(monkeypatch, FakeFlwr([("finished:completed", "")]))
    fake.stop = lambda args: FlwrResult(  # type: ignore[method-assign]
        0,
        json.dumps({"success": False, "error-message": "x\n\n[code: 18] Run is already finished."}),
        "",
    )
    result = fledge("round", "stop", RUN_ID, "-i", fleet)
    assert result.exit_code == 1 and "already finished" in result.stderr


def test_nodes_as_json(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFlwr([], online=1))
    result = fledge("round", "nodes", "-i", fleet, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["devices"] == 2 and doc["online"] == 1
    assert [n["status"] for n in doc["nodes"]] == ["online", "offline"]


def test_nodes_as_text_points_at_missing_devices(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeFlwr([], online=1))
    result = fledge("round", "nodes", "-i", fleet)
    assert result.exit_code == 0
    text = " ".join(result.stderr.split())
    assert "1 of 2 devices" in text and "journalctl -u fledge-supernode" in text


def test_nodes_name_their_devices_and_the_devices_without_a_node(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller's record (fledge provision writes it) maps node IDs to hosts."""
    fake = use(monkeypatch, FakeFlwr([], online=1))
    ids = [n["node-id"] for n in json.loads(fake.supernode_ls([]).stdout)["nodes"]]
    registry.record(fleet.parent / ".fledge", "pi-1", "ecdsa-sha2-nistp384 AAAA", ids[0])
    result = fledge("round", "nodes", "-i", fleet, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(n["host"], n["node_id"]) for n in doc["nodes"]] == [("pi-1", ids[0]), (None, ids[1])]
    assert doc["missing"] == ["pi-2"]
    lines = fledge("round", "nodes", "-i", fleet).stderr.splitlines()
    assert any("(no host)" in line and ids[1] in line for line in lines)
    assert any("pi-2" in line and "not registered" in line for line in lines)
