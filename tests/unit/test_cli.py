"""The CLI through CliRunner: inventory, certs and provision (Ansible mocked at its seam)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fledge import inventory
from fledge.commands import playbooks as playbooks_cmd
from fledge.main import app
from fledge.runner import Failure, HostRecap, PlaybookResult

runner = CliRunner()


def fledge(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def pis(tmp_path: Path) -> Path:
    path = tmp_path / "pis.yml"
    result = fledge(
        "inventory",
        "generate",
        "-s",
        "coordinator=10.0.0.1",
        "-d",
        "pi-1=pi@10.0.0.21",
        "-d",
        "pi-2=10.0.0.22:2222",
        "-u",
        "pi",
        "-o",
        path,
    )
    assert result.exit_code == 0, result.output
    return path


def test_version() -> None:
    result = fledge("--version")
    assert result.exit_code == 0 and result.stdout.startswith("fledge ")


def test_generate_writes_a_valid_ansible_inventory(pis: Path) -> None:
    doc = yaml.safe_load(pis.read_text())
    hosts = doc["all"]["children"]["supernodes"]["hosts"]
    assert hosts["pi-1"] == {"ansible_host": "10.0.0.21"}  # the user is said once, in all.vars
    assert hosts["pi-2"] == {"ansible_host": "10.0.0.22", "ansible_port": 2222}
    assert doc["all"]["vars"] == {"ansible_user": "pi"}
    assert [h.name for h in inventory.load(pis).supernodes] == ["pi-1", "pi-2"]


def test_generate_refuses_to_overwrite(pis: Path) -> None:
    before = pis.read_text()
    result = fledge("inventory", "generate", "-s", "c=10.0.0.1", "-d", "d=10.0.0.2", "-o", pis)
    assert result.exit_code == 1
    assert "--force" in result.stderr
    assert pis.read_text() == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-s", "c=10.0.0.1:99999", "-d", "d=10.0.0.2"], "not a port number"),
        (["-s", "c=10.0.0.1", "-d", "d=bad_host!"], "not an IP address or host name"),
        (["-s", "c=10.0.0.1", "-d", "10.0.0.2"], "an IP address needs a name"),
        (["-d", "d=10.0.0.2"], "exactly one coordinator"),
        (["-s", "c=10.0.0.1"], "at least one device"),
    ],
)
def test_generate_rejects_bad_hosts_and_writes_nothing(
    tmp_path: Path, args: list[str], words: str
) -> None:
    out = tmp_path / "out.yml"
    result = fledge("inventory", "generate", *args, "-o", out)
    assert result.exit_code == 1
    assert words in result.stderr
    assert not out.exists()


def test_generate_from_hosts_file(tmp_path: Path) -> None:
    csv_file = tmp_path / "hosts.csv"
    csv_file.write_text(
        "role,name,address,user,port\nsuperlink,c,10.0.0.1,,\nsupernode,d1,10.0.0.2,pi,2201\n"
    )
    result = fledge("inventory", "generate", "--hosts-file", csv_file, "-o", tmp_path / "inv.yml")
    assert result.exit_code == 0, result.output
    (device,) = inventory.load(tmp_path / "inv.yml").supernodes
    assert (device.name, device.address, device.user, device.port) == ("d1", "10.0.0.2", "pi", 2201)


def test_hosts_file_errors_name_the_line(tmp_path: Path) -> None:
    csv_file = tmp_path / "hosts.csv"
    csv_file.write_text(
        "role,name,address,user,port\nsuperlink,c,10.0.0.1,,\nworker,d1,10.0.0.2,pi,22\n"
    )
    result = fledge("inventory", "generate", "--hosts-file", csv_file, "-o", tmp_path / "inv.yml")
    assert result.exit_code == 1
    assert f"{csv_file}:3" in result.stderr and "unknown role 'worker'" in result.stderr


def test_check_reports_bad_inventory_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "all:\n  children:\n    superlink:\n      hosts:\n        c: {ansible_port: 0}\n"
    )
    result = fledge("inventory", "check", "-i", bad)
    assert result.exit_code == 1
    assert f"{bad}:5" in result.stderr and "field 'ansible_port'" in result.stderr


def test_check_json(pis: Path) -> None:
    result = fledge("inventory", "check", "-i", pis, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [h["name"] for h in doc["hosts"]] == ["coordinator", "pi-1", "pi-2"]
    assert doc["superlink"] == {"fleet_host": "10.0.0.1", "port": 8000, "tls": True}


def test_inventory_from_environment(pis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEDGE_INVENTORY", str(pis))
    assert fledge("inventory", "check").exit_code == 0


def test_certs_init_then_show(pis: Path) -> None:
    result = fledge("certs", "init", "-i", pis, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["superlink"]["sans"]) == {"coordinator", "10.0.0.1", "127.0.0.1", "localhost"}
    assert doc["superlink"]["issued_by_ca"] is True
    state = pis.parent / ".fledge"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "pki" / "ca.key").stat().st_mode) == 0o600

    ca_before = (state / "pki" / "ca.key").read_bytes()
    again = fledge("certs", "init", "-i", pis)
    assert again.exit_code == 0 and "Keeping the existing CA" in again.stderr
    assert (state / "pki" / "ca.key").read_bytes() == ca_before

    shown = fledge("certs", "show", "-i", pis, "--format", "json")
    assert json.loads(shown.stdout)["superlink"]["reissue"] == []


def test_certs_init_force_replaces_the_ca(pis: Path) -> None:
    fledge("certs", "init", "-i", pis)
    key = pis.parent / ".fledge" / "pki" / "ca.key"
    before = key.read_bytes()
    result = fledge("certs", "init", "-i", pis, "--force")
    assert result.exit_code == 0 and "provision the whole fleet again" in result.stderr
    assert key.read_bytes() != before


def test_certs_show_without_ca(pis: Path) -> None:
    result = fledge("certs", "show", "-i", pis)
    assert result.exit_code == 1 and "fledge certs init" in result.stderr


def _fake_run(result: PlaybookResult, calls: list):
    def run_playbook(playbook, inventory_path, state_dir, **kwargs):
        calls.append((playbook, inventory_path, state_dir, kwargs))
        for event in (
            {"event": "playbook_on_play_start", "event_data": {"play": "Prepare every host"}},
            {
                "event": "runner_on_ok",
                "event_data": {"host": "pi-1", "task": "t", "res": {"changed": True}},
            },
        ):
            kwargs["on_event"](event)
        return result

    return run_playbook


def test_provision_success(pis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    recap = {h: HostRecap(ok=10, changed=2) for h in ("coordinator", "pi-1", "pi-2")}
    monkeypatch.setattr(
        playbooks_cmd, "run_playbook", _fake_run(PlaybookResult(0, "successful", recap), calls)
    )
    result = fledge("provision", "-i", pis, "--format", "json")
    assert result.exit_code == 0, result.output
    (playbook, inv, state_dir, kwargs) = calls[0]
    assert playbook.name == "deploy.yml" and playbook.is_file()
    assert inv == pis and state_dir == pis.parent / ".fledge"
    assert kwargs["check"] is False
    doc = json.loads(result.stdout)
    assert doc["succeeded"] is True and doc["changed"] == 6
    assert "Provisioning summary" in result.stderr


def test_a_dry_run_says_what_a_real_run_would_change(
    pis: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []
    recap = {h: HostRecap(ok=10, changed=2) for h in ("coordinator", "pi-1", "pi-2")}
    monkeypatch.setattr(
        playbooks_cmd, "run_playbook", _fake_run(PlaybookResult(0, "successful", recap), calls)
    )
    result = fledge("provision", "-i", pis, "--check")
    assert result.exit_code == 0, result.output
    assert calls[0][3]["check"] is True
    assert "a real run would make 6 changes" in result.stderr
    assert "Next:" not in result.stderr


def test_provision_fails_when_a_host_fails(pis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recap = {
        "coordinator": HostRecap(ok=5),
        "pi-1": HostRecap(ok=3, failed=1),
        "pi-2": HostRecap(unreachable=1),
    }
    failures = [
        Failure("pi-1", "Refuse a 32-bit or unsupported userland", "pi-1 has a armhf userland"),
        Failure("pi-2", "Gathering Facts", "ssh: connect to host refused", unreachable=True),
    ]
    fake = _fake_run(PlaybookResult(2, "failed", recap, failures), [])
    monkeypatch.setattr(playbooks_cmd, "run_playbook", fake)
    result = fledge("provision", "-i", pis, "--check")
    assert result.exit_code == 1
    assert "armhf userland" in result.stderr and "FAILED" in result.stderr
    assert "check mode" in result.stderr


def test_provision_rejects_a_bad_inventory_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "all:\n  children:\n    supernodes: {hosts: {d: null}}\n    superlink: {hosts: {d: null}}\n"
    )
    monkeypatch.setattr(playbooks_cmd, "run_playbook", lambda *a, **k: pytest.fail("must not run"))
    result = fledge("provision", "-i", bad)
    assert result.exit_code == 1 and "both" in result.stderr


def test_provision_full_runs_every_task_and_unchanged_hosts_are_named(
    pis: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []

    def run_playbook(playbook, inventory_path, state_dir, **kwargs):
        calls.append(kwargs)
        return PlaybookResult(
            0, "successful", {h: HostRecap(ok=2) for h in ("coordinator", "pi-1", "pi-2")},
            unchanged=["coordinator", "pi-2"],
        )  # fmt: skip

    monkeypatch.setattr(playbooks_cmd, "run_playbook", run_playbook)
    result = fledge("provision", "-i", pis, "--format", "json")
    assert result.exit_code == 0, result.output
    assert calls[0]["extravars"] is None
    assert json.loads(result.stdout)["unchanged"] == ["coordinator", "pi-2"]
    assert "coordinator, pi-2 (--full runs every task" in " ".join(result.stderr.split())
    assert fledge("provision", "-i", pis, "--full").exit_code == 0
    assert calls[1]["extravars"] == {"fledge_full": True}


def test_retry_failed_runs_the_hosts_that_failed_last_time(
    pis: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []
    outcomes = [
        {"coordinator": HostRecap(ok=5), "pi-1": HostRecap(ok=5), "pi-2": HostRecap(unreachable=1)},
        {"pi-2": HostRecap(ok=5, changed=3)},
    ]

    def run_playbook(playbook, inventory_path, state_dir, **kwargs):
        calls.append(kwargs)
        recap = outcomes[len(calls) - 1]
        return PlaybookResult(0 if len(calls) > 1 else 4, "done", recap)

    monkeypatch.setattr(playbooks_cmd, "run_playbook", run_playbook)
    assert fledge("provision", "-i", pis).exit_code == 1
    retried = fledge("provision", "-i", pis, "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert calls[1]["limit"] == "pi-2"
    again = fledge("provision", "-i", pis, "--retry-failed")
    assert again.exit_code == 1 and "failed on no host" in again.stderr
    assert len(calls) == 2
    both = fledge("provision", "-i", pis, "--retry-failed", "--limit", "pi-1")
    assert both.exit_code == 1 and "--limit" in both.stderr
