"""`fledge inventory scan`: the probe's output read, preflight's verdicts, the report, the
inventories written; SSH faked at its seam (``fledge.scan.probe``), or served by a
paramiko server on loopback where host keys are the point."""

from __future__ import annotations

import contextlib
import json
import platform
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import yaml
from typer.testing import CliRunner

from fledge import inventory, scan
from fledge.collection import collection_dir
from fledge.errors import FledgeError
from fledge.main import app

runner = CliRunner()
SETTINGS = scan.preflight_settings()
DEVICE = scan.default_runtime()
NEEDS = SETTINGS.requirements

DEBIAN = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
PI_MODEL = "Raspberry Pi 4 Model B Rev 1.4\0"  # as the device tree has it
BIG = 64 * 1024  # MB: more than any kind of host needs


def probe_output(
    *,
    clock: str | None = None,
    kernel: str = "aarch64",
    userland: str = "arm64",
    os_release: str = DEBIAN,
    python: str = "3.11.2",
    memory_mb: int | None = BIG,
    disk_mb: int | None = BIG,
    model: str = PI_MODEL,
    systemd: bool = True,
) -> str:
    """What the remote command prints: each section, then a newline (``echo``)."""
    parts = {
        "clock": clock if clock is not None else f"{time.time():.9f}",
        "kernel": kernel,
        "userland": userland,
        "os_release": os_release,
        "python": python,
        "memory": f"MemTotal:       {memory_mb * 1024} kB" if memory_mb is not None else "",
        "disk": f"{disk_mb * 256} 4096" if disk_mb is not None else "",
        "model": model,
        "systemd": "yes" if systemd else "",
    }
    return "".join(f"{scan._MARK}{name}\n{value}\n" for name, value in parts.items())


def facts(**changes) -> scan.Facts:
    now = time.time()
    changes.setdefault("clock", f"{now:.6f}")
    return scan.parse(probe_output(**changes), now, now)


def fledge(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def failed(result, *words: str) -> None:
    """Exit 1 with a message on stderr, never a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    missing = [w for w in words if w not in result.stderr]
    assert not missing, f"{missing} not in: {result.stderr}"


# --- The role's settings -----------------------------------------------------


def test_settings_are_the_preflight_roles_own() -> None:
    role = collection_dir() / "roles" / "preflight"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    variables = yaml.safe_load((role / "vars" / "main.yml").read_text())
    assert SETTINGS.python == defaults["preflight_python"]
    assert SETTINGS.python_min_version == str(defaults["preflight_python_min_version"])
    assert {k: vars(v) for k, v in NEEDS.items()} == defaults["preflight_requirements"]
    assert SETTINGS.clock_max_ahead == defaults["preflight_clock_max_ahead"]
    assert SETTINGS.clock_max_behind == defaults["preflight_clock_max_behind"]
    # The install directory, as fledge.edge.common's defaults name it.
    common = yaml.safe_load((role.parent / "common" / "defaults" / "main.yml").read_text())
    assert defaults["preflight_disk_path"] == "{{ fledge_install_dir }}"
    assert SETTINGS.disk_path == common["fledge_install_dir"]
    assert SETTINGS.architectures == variables["_preflight_architectures"]
    assert DEVICE in SETTINGS.runtimes and inventory.SUPERLINK not in SETTINGS.runtimes


def test_unreadable_role_settings_name_the_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = tmp_path / "roles" / "preflight"
    for kind in ("defaults", "vars"):
        (role / kind).mkdir(parents=True)
        text = (collection_dir() / "roles" / "preflight" / kind / "main.yml").read_text()
        (role / kind / "main.yml").write_text(text)
    defaults = role / "defaults" / "main.yml"
    text = defaults.read_text()
    defaults.write_text(
        re.sub(r"preflight_clock_max_ahead: .*", "preflight_clock_max_ahead: x", text)
    )
    monkeypatch.setattr(scan, "collection_dir", lambda: tmp_path)
    with pytest.raises(FledgeError) as caught:
        scan.preflight_settings()
    assert caught.value.path == defaults and caught.value.field == "preflight_clock_max_ahead"


# --- The probe and its output ---------------------------------------------------


def test_the_probe_runs_in_a_posix_shell_and_reads_this_machine() -> None:
    """The remote command, run here: every section it prints is read."""
    before = time.time()
    out = subprocess.run(
        scan.remote_command(SETTINGS), shell=True, capture_output=True, text=True, timeout=60
    ).stdout
    after = time.time()
    found = scan.parse(out, before, after)
    assert found.architecture == platform.machine()
    assert found.memory_mb and found.memory_mb > 0
    assert found.disk_mb is not None and found.disk_mb >= 0
    assert found.clock is not None and abs(found.clock.offset) < 5
    if Path(SETTINGS.python).exists():
        version = subprocess.run(
            [SETTINGS.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert found.python == version


def test_a_pi_model_ends_with_a_nul_that_is_dropped() -> None:
    assert facts().pi_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert (
        facts(model="Raspberry Pi 5 Model B Rev 1.0").pi_model == "Raspberry Pi 5 Model B Rev 1.0"
    )


@pytest.mark.parametrize("model", ["", "\0", "\n"])
def test_no_device_tree_model_is_none(model: str) -> None:
    assert facts(model=model).pi_model is None


def test_os_release_fields() -> None:
    found = facts()
    assert (found.os, found.codename) == ("Debian GNU/Linux 12 (bookworm)", "bookworm")
    # Missing fields: NAME stands in for PRETTY_NAME; no codename (Debian testing, Arch ...).
    found = facts(os_release='NAME="Some Linux"\nID=some\n')
    assert (found.os, found.codename) == ("Some Linux", None)
    found = facts(os_release="")
    assert (found.os, found.codename) == (None, None)
    # Single quotes, an escaped quote, comments and an unbalanced quote.
    found = facts(os_release='# a comment\nPRETTY_NAME=\'It\\\'s "odd"\nVERSION_CODENAME="x\n')
    assert found.os is not None and found.codename == "x"
    found = facts(os_release='PRETTY_NAME="Ubuntu 24.04.1 LTS"\nVERSION_CODENAME=noble\n')
    assert (found.os, found.codename) == ("Ubuntu 24.04.1 LTS", "noble")


def test_missing_values_are_none_and_refused() -> None:
    found = facts(userland="", python="", memory_mb=None, disk_mb=None, clock="", systemd=False)
    assert (found.userland, found.python, found.memory_mb, found.disk_mb, found.clock) == (
        (None,) * 5
    )
    reasons = " | ".join(scan.judge(found, DEVICE, SETTINGS))
    for words in ("no systemd", "no dpkg", f"no {SETTINGS.python}", "memory", "disk"):
        assert words in reasons
    assert "clock unreadable" in reasons


def test_python_noise_is_not_a_version() -> None:
    assert facts(python="sh: 1: /usr/bin/python3: not found").python is None


def test_output_that_is_not_the_probes_is_refused() -> None:
    with pytest.raises(ValueError, match="not the probe's"):
        scan.parse("Welcome to fish, the friendly interactive shell\n", 0, 1)


def test_memory_and_disk_in_mb_as_preflight_counts_them() -> None:
    out = probe_output().replace(f"MemTotal:       {BIG * 1024} kB", "MemTotal:  3884136 kB")
    out = out.replace(f"{BIG * 256} 4096", "1000000 4096")
    found = scan.parse(out, 0, 0)
    assert found.memory_mb == 3884136 // 1024
    assert found.disk_mb == 1000000 * 4096 // 2**20


def test_the_clock_offset_is_against_the_midpoint() -> None:
    found = scan.parse(probe_output(clock="1000.0"), 990.0, 994.0)
    assert found.clock is not None
    assert (found.clock.offset, found.clock.uncertainty) == (8.0, 2.0)
    assert (found.clock.ahead, found.clock.behind) == (6.0, -10.0)


# --- Verdicts ----------------------------------------------------------------------


def test_a_good_host_is_ok() -> None:
    assert scan.judge(facts(), DEVICE, SETTINGS) == []


@pytest.mark.parametrize("kind", sorted(NEEDS))
@pytest.mark.parametrize("resource", ["memory_mb", "disk_mb"])
def test_memory_and_disk_at_and_below_each_kinds_need(kind: str, resource: str) -> None:
    need = getattr(NEEDS[kind], resource)
    assert scan.judge(facts(**{resource: need}), kind, SETTINGS) == []
    assert scan.judge(facts(**{resource: need + 1}), kind, SETTINGS) == []
    (reason,) = scan.judge(facts(**{resource: need - 1}), kind, SETTINGS)
    assert f"{need - 1} MB" in reason and f"a {kind} host needs {need} MB" in reason


def test_python_at_and_below_the_minimum() -> None:
    major, minor = (int(p) for p in SETTINGS.python_min_version.split(".")[:2])
    for ok in (f"{major}.{minor}.0", f"{major}.{minor}.9", f"{major}.{minor + 1}.0"):
        assert scan.judge(facts(python=ok), DEVICE, SETTINGS) == [], ok
    (reason,) = scan.judge(facts(python=f"{major}.{minor - 1}.12"), DEVICE, SETTINGS)
    assert f"{major}.{minor - 1}.12" in reason and SETTINGS.python_min_version in reason


@pytest.mark.parametrize("userland", sorted(SETTINGS.architectures))
def test_supported_userlands(userland: str) -> None:
    kernel = SETTINGS.architectures[userland]
    assert scan.judge(facts(kernel=kernel, userland=userland), DEVICE, SETTINGS) == []


def test_a_32_bit_userland_on_a_64_bit_kernel_is_refused() -> None:
    (reason,) = scan.judge(facts(kernel="aarch64", userland="armhf"), DEVICE, SETTINGS)
    assert "armhf userland" in reason and "64-bit" in reason


def _clock(ahead: float = 0.0, behind: float = 0.0) -> scan.Facts:
    """A host whose clock is ``ahead`` of the controller's later reading, or ``behind`` its
    earlier one, in preflight's terms (a window of one second between the two)."""
    before, after = 1000.0, 1001.0
    remote = after + ahead if ahead else before - behind if behind else 1000.5
    return scan.parse(probe_output(clock=repr(remote)), before, after)


def test_clock_at_and_beyond_the_limits() -> None:
    ahead, behind = SETTINGS.clock_max_ahead, SETTINGS.clock_max_behind
    assert scan.judge(_clock(), DEVICE, SETTINGS) == []
    assert scan.judge(_clock(ahead=ahead), DEVICE, SETTINGS) == []
    assert scan.judge(_clock(behind=behind), DEVICE, SETTINGS) == []
    (reason,) = scan.judge(_clock(ahead=ahead + 0.5), DEVICE, SETTINGS)
    assert "ahead" in reason
    (reason,) = scan.judge(_clock(behind=behind + 0.5), DEVICE, SETTINGS)
    assert "behind" in reason


# --- The command, with the SSH seam faked ----------------------------------------


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("")
    return path


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """What each address answers: probe_output() arguments, or a FledgeError (unreachable).
    An address not listed answers as a good host."""
    answers: dict[str, object] = {}
    calls: list[str] = []

    def probe(target, access, command, on_recorded):
        calls.append(target.name)
        answer = answers.get(target.spec.address, {})
        if isinstance(answer, FledgeError):  # a new one each time: the scan names its host
            raise FledgeError(answer.message, fix=answer.fix)
        before = time.time()
        return probe_output(clock=f"{before:.6f}", **answer), before, before  # type: ignore[arg-type]

    monkeypatch.setattr(scan, "probe", probe)
    answers["calls"] = calls
    return answers


def run_scan(known_hosts: Path, *args: object):
    return fledge("inventory", "scan", "--known-hosts", known_hosts, *args)


UNREACHABLE = FledgeError(
    "SSH to pi@10.0.0.23:22 failed: timed out",
    fix="check that the host is up and sshd listens on that port",
)


def test_json_report_of_good_hosts_exits_0(hosts: dict, known_hosts: Path) -> None:
    result = run_scan(known_hosts, "pi-1=pi@10.0.0.21", "pi-2=10.0.0.22:2222", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"hosts", "ok", "inventory", "error"}
    assert doc["ok"] is True and doc["inventory"] is None and doc["error"] is None
    first, second = doc["hosts"]
    assert set(first) == {
        "name", "address", "port", "user", "kind", "verdict", "reasons", "error",
        "architecture", "userland", "os", "codename", "python", "memory_mb", "disk_mb",
        "pi_model", "systemd", "clock_offset_s", "clock_uncertainty_s", "host_key_recorded",
    }  # fmt: skip
    assert (first["name"], first["user"], first["port"], first["kind"]) == (
        "pi-1", "pi", 22, DEVICE,
    )  # fmt: skip
    assert (second["address"], second["port"]) == ("10.0.0.22", 2222)
    assert first["verdict"] == "ok" and first["reasons"] == [] and first["error"] is None
    assert first["architecture"] == "aarch64" and first["userland"] == "arm64"
    assert first["os"] == "Debian GNU/Linux 12 (bookworm)" and first["codename"] == "bookworm"
    assert first["pi_model"] == "Raspberry Pi 4 Model B Rev 1.4" and first["python"] == "3.11.2"
    assert first["memory_mb"] == BIG and first["disk_mb"] == BIG
    assert first["clock_offset_s"] == 0.0 and first["host_key_recorded"] is None


def test_an_unreachable_host_is_a_row_and_exit_1(hosts: dict, known_hosts: Path) -> None:
    hosts["10.0.0.23"] = UNREACHABLE
    result = run_scan(known_hosts, "pi-1=10.0.0.21", "pi-3=10.0.0.23", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    good, bad = doc["hosts"]
    assert good["verdict"] == "ok"
    assert bad["verdict"] == "unreachable" and bad["architecture"] is None
    assert bad["error"]["error"] == UNREACHABLE.message and bad["error"]["host"] == "pi-3"
    assert "Traceback" not in result.stderr


def test_text_report_shows_a_table_with_verdicts(
    hosts: dict, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a row a line
    hosts["10.0.0.22"] = {"python": "3.9.2", "model": ""}
    hosts["10.0.0.23"] = UNREACHABLE
    result = run_scan(known_hosts, "pi-1=10.0.0.21", "pi-2=10.0.0.22", "pi-3=10.0.0.23")
    assert result.exit_code == 1
    assert result.stdout == ""  # people's output is on stderr
    text = " ".join(result.stderr.split())
    for words in ("verdict", "ok", "Python 3.9.2 (needs", "unreachable", "timed out"):
        assert words in text, words
    assert "1 of 3 host(s) ok; 1 would be refused by preflight; 1 not reached." in text


def test_the_coordinator_is_judged_as_a_superlink(hosts: dict, known_hosts: Path) -> None:
    between = (NEEDS[DEVICE].memory_mb + NEEDS[inventory.SUPERLINK].memory_mb) // 2
    assert NEEDS[DEVICE].memory_mb <= between < NEEDS[inventory.SUPERLINK].memory_mb
    hosts["10.0.0.1"] = hosts["10.0.0.21"] = {"memory_mb": between}
    result = run_scan(
        known_hosts, "c=10.0.0.1", "pi-1=10.0.0.21", "--coordinator", "c", "--format", "json"
    )
    assert result.exit_code == 1
    coordinator, device = json.loads(result.stdout)["hosts"]
    assert coordinator["kind"] == inventory.SUPERLINK and coordinator["verdict"] == "refused"
    assert device["kind"] == DEVICE and device["verdict"] == "ok"


def test_the_container_runtime_needs_more(hosts: dict, known_hosts: Path) -> None:
    need = NEEDS["container"].disk_mb
    hosts["10.0.0.21"] = {"disk_mb": need - 1}
    assert run_scan(known_hosts, "pi-1=10.0.0.21").exit_code == (
        0 if need - 1 >= NEEDS[DEVICE].disk_mb else 1
    )
    result = run_scan(known_hosts, "pi-1=10.0.0.21", "--runtime", "container", "--format", "json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)["hosts"]
    assert row["kind"] == "container" and "a container host needs" in row["reasons"][0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["10.0.0.21"], "an IP address needs a name"),
        (["pi-1=10.0.0.21:99999"], "not a port number"),
        (["pi-1=10.0.0.21", "pi-1=10.0.0.22"], "given twice"),
        (["pi-1=10.0.0.21", "--coordinator", "c"], "none of the hosts given"),
        (["pi-1=10.0.0.21", "--runtime", "podman"], "unknown runtime"),
        (["pi-1=10.0.0.21", "--user", "Bad User"], "not a valid Linux user name"),
        (["pi-1=10.0.0.21", "--output", "x.yml"], "needs a coordinator"),
    ],
)
def test_bad_input_is_refused_before_any_host_is_scanned(
    hosts: dict, known_hosts: Path, args: list[str], words: str
) -> None:
    failed(run_scan(known_hosts, *args), words)
    assert hosts["calls"] == []


def test_an_unreadable_key_is_refused(hosts: dict, known_hosts: Path, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not a key\n")
    failed(run_scan(known_hosts, "pi-1=10.0.0.21", "--key", key), str(key), "private key")
    failed(run_scan(known_hosts, "pi-1=10.0.0.21", "--key", tmp_path / "none"), "private key")
    assert hosts["calls"] == []


def test_a_missing_known_hosts_file_is_refused(hosts: dict, tmp_path: Path) -> None:
    missing = tmp_path / "known_hosts"
    result = fledge("inventory", "scan", "pi-1=10.0.0.21", "--known-hosts", missing)
    failed(result, str(missing), "no known_hosts file", "--accept-new-host-key")
    result = fledge(
        "inventory", "scan", "pi-1=10.0.0.21", "--known-hosts", missing, "--format", "json"
    )
    assert json.loads(result.stdout)["field"] == "--known-hosts"
    assert hosts["calls"] == []


# --- Writing inventories -------------------------------------------------------------


def test_output_writes_the_hosts_reached(hosts: dict, known_hosts: Path, tmp_path: Path) -> None:
    hosts["10.0.0.23"] = UNREACHABLE
    hosts["10.0.0.22"] = {"python": "3.9.2"}  # refused, but reached: written
    out = tmp_path / "fleet.yml"
    result = run_scan(
        known_hosts, "c=10.0.0.1", "pi-1=pi@10.0.0.21", "pi-2=10.0.0.22:2222", "pi-3=10.0.0.23",
        "--coordinator", "c", "--user", "pi", "--output", out, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 1  # pi-2 refused, pi-3 unreachable
    doc = json.loads(result.stdout)
    assert doc["inventory"]["hosts"] == ["c", "pi-1", "pi-2"] and doc["error"] is None
    fleet = inventory.load(out)
    assert fleet.superlink.name == "c"
    assert [(h.name, h.port, h.user) for h in fleet.supernodes] == [
        ("pi-1", 22, "pi"), ("pi-2", 2222, "pi"),
    ]  # fmt: skip
    text = out.read_text()
    assert text.startswith("# fledge fleet inventory (`fledge inventory scan`)")
    # The user is said once; host keys are checked against the file the scan used.
    all_vars = yaml.safe_load(text)["all"]["vars"]
    assert all_vars["ansible_user"] == "pi"
    assert f"UserKnownHostsFile={known_hosts}" in all_vars["ansible_ssh_common_args"]


def test_output_records_the_key_and_a_runtime_given(
    hosts: dict, known_hosts: Path, tmp_path: Path
) -> None:
    key = tmp_path / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(key))
    out = tmp_path / "fleet.yml"
    result = run_scan(
        known_hosts, "c=10.0.0.1", "pi-1=10.0.0.21", "--coordinator", "c", "--key", key,
        "--runtime", "container", "--output", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fleet = inventory.load(out)
    assert fleet.supernodes[0].vars["supernode_runtime"] == "container"
    assert fleet.superlink.vars["supernode_runtime"] == DEVICE  # the role's default, untouched
    assert fleet.superlink.vars["ansible_ssh_private_key_file"] == str(key)


def test_output_is_not_overwritten_without_force(
    hosts: dict, known_hosts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fleet.yml"
    out.write_text("mine\n")
    args = ("c=10.0.0.1", "pi-1=10.0.0.21", "--coordinator", "c", "--output", out)
    failed(run_scan(known_hosts, *args), "the file exists", "--force")
    assert out.read_text() == "mine\n" and hosts["calls"] == []
    assert run_scan(known_hosts, *args, "--force").exit_code == 0
    assert inventory.load(out).superlink.name == "c"


def test_output_without_a_coordinator_reached_writes_nothing(
    hosts: dict, known_hosts: Path, tmp_path: Path
) -> None:
    hosts["10.0.0.1"] = UNREACHABLE
    out = tmp_path / "fleet.yml"
    result = run_scan(
        known_hosts, "c=10.0.0.1", "pi-1=10.0.0.21", "--coordinator", "c", "--output", out,
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["inventory"] is None and "coordinator c was not reached" in doc["error"]["error"]
    assert not out.exists()


@pytest.fixture
def pis(tmp_path: Path) -> Path:
    path = tmp_path / "pis.yml"
    result = fledge(
        "inventory", "generate", "-s", "coordinator=10.0.0.1", "-d", "pi-1=10.0.0.21",
        "-u", "pi", "-o", path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return path


def test_add_to_adds_the_devices_reached(hosts: dict, known_hosts: Path, pis: Path) -> None:
    hosts["10.0.0.24"] = UNREACHABLE
    pis.chmod(0o600)
    result = run_scan(
        known_hosts, "pi-2=10.0.0.22", "pi-3=admin@10.0.0.23:2222", "pi-4=10.0.0.24",
        "--add-to", pis, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 1  # pi-4
    assert json.loads(result.stdout)["inventory"]["hosts"] == ["pi-2", "pi-3"]
    fleet = inventory.load(pis)
    assert [(h.name, h.user, h.port) for h in fleet.supernodes] == [
        ("pi-1", "pi", 22), ("pi-2", "pi", 22), ("pi-3", "admin", 2222),
    ]  # fmt: skip
    assert pis.read_text().startswith("# fledge fleet inventory (`fledge inventory generate`)")
    assert pis.stat().st_mode & 0o777 == 0o600


def test_add_to_takes_a_coordinator_where_there_is_none(
    hosts: dict, known_hosts: Path, tmp_path: Path
) -> None:
    devices = tmp_path / "devices.yml"
    devices.write_text("# my devices\nall:\n  children:\n    supernodes:\n      hosts:\n"
                       "        pi-1: {ansible_host: 10.0.0.21}  # the first\n")  # fmt: skip
    result = run_scan(known_hosts, "c=10.0.0.1", "--coordinator", "c", "--add-to", devices)
    assert result.exit_code == 0, result.output
    assert "were not kept" in result.stderr  # the comment after the first lines
    fleet = inventory.load(devices)
    assert (fleet.superlink.name, [h.name for h in fleet.supernodes]) == ("c", ["pi-1"])
    assert devices.read_text().startswith("# my devices\n")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["pi-1=10.0.0.29"], "has a host called 'pi-1' already"),
        (["supernodes=10.0.0.29"], "has a group called 'supernodes' already"),
        (["c=10.0.0.2", "--coordinator", "c"], "has a coordinator already (coordinator)"),
        (["pi-2=10.0.0.22", "--output", "x.yml", "--coordinator", "pi-2"], "not both"),
    ],
)
def test_add_to_refusals_leave_the_file_as_it_was(
    hosts: dict, known_hosts: Path, pis: Path, args: list[str], words: str
) -> None:
    before = pis.read_text()
    failed(run_scan(known_hosts, *args, "--add-to", pis), words)
    assert pis.read_text() == before and hosts["calls"] == []


def test_add_to_an_inventory_that_is_not_yaml(
    hosts: dict, known_hosts: Path, tmp_path: Path
) -> None:
    ini = tmp_path / "hosts.ini"
    ini.write_text("[supernodes]\npi-1 ansible_host=10.0.0.21\n")
    failed(run_scan(known_hosts, "pi-2=10.0.0.22", "--add-to", ini), "YAML inventory")
    assert hosts["calls"] == []


def test_add_to_a_result_that_would_be_invalid_writes_nothing(
    hosts: dict, known_hosts: Path, tmp_path: Path
) -> None:
    """Devices alone do not make a fleet: the whole is checked before it is written."""
    devices = tmp_path / "devices.yml"
    devices.write_text("all:\n  children:\n    supernodes:\n      hosts:\n        pi-1:\n")
    before = devices.read_text()
    result = run_scan(known_hosts, "pi-2=10.0.0.22", "--add-to", devices)
    failed(result, str(devices), "with the scanned hosts added", "exactly one host")
    assert devices.read_text() == before


# --- Host keys, over real SSH to a paramiko server on loopback ---------------------------


class _Server(paramiko.ServerInterface):
    """Takes any key for any user, and answers any command with the probe's output."""

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def answer() -> None:
            channel.sendall(probe_output(kernel="x86_64", userland="amd64").encode())
            channel.send_exit_status(0)
            # EOF, not close: a close could overtake the reply to the exec request.
            channel.shutdown_write()

        threading.Thread(target=answer, daemon=True).start()
        return True


@pytest.fixture
def sshd() -> Iterator[tuple[int, paramiko.PKey]]:
    """A port on loopback where an SSH server answers, and its host key."""
    host_key = paramiko.ECDSAKey.generate()
    listener = socket.create_server(("127.0.0.1", 0))
    transports: list[paramiko.Transport] = []

    def handle(sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(host_key)
        transports.append(transport)
        # A client that reads the host key and goes may reset the connection.
        with contextlib.suppress(paramiko.SSHException, EOFError, ConnectionError):
            transport.start_server(server=_Server())

    def serve() -> None:
        # One thread per connection: a client that reads the host key and
        # goes must not hold up the next one (start_server waits for it).
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(sock,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], host_key
    listener.close()
    for transport in transports:
        transport.close()


@pytest.fixture
def login_key(tmp_path: Path) -> Path:
    key = tmp_path / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(key))
    return key


def _scan_sshd(known_hosts: Path, port: int, key: Path, *args: str):
    return fledge(
        "inventory", "scan", f"lab=pi@127.0.0.1:{port}", "--known-hosts", known_hosts,
        "--key", key, "--timeout", 30, "--format", "json", *args,
    )  # fmt: skip


def test_an_unknown_host_key_fails_that_host(
    sshd: tuple[int, paramiko.PKey], known_hosts: Path, login_key: Path
) -> None:
    port, _ = sshd
    result = _scan_sshd(known_hosts, port, login_key)
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)["hosts"]
    assert row["verdict"] == "unreachable" and "unknown host key" in row["error"]["error"]
    assert row["error"]["path"] == str(known_hosts)
    assert known_hosts.read_text() == ""


def test_accept_new_host_key_records_it_once(
    sshd: tuple[int, paramiko.PKey], known_hosts: Path, login_key: Path
) -> None:
    port, host_key = sshd
    result = _scan_sshd(known_hosts, port, login_key, "--accept-new-host-key")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["hosts"]
    assert row["verdict"] == "ok" and row["architecture"] == "x86_64"
    assert row["host_key_recorded"] == {"type": host_key.get_name(), "sha256": host_key.fingerprint}
    assert host_key.fingerprint in result.stderr and "Recorded" in result.stderr
    assert known_hosts.read_text() == (
        f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n"
    )
    # Known now: the next scan needs no option, and records nothing.
    result = _scan_sshd(known_hosts, port, login_key)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hosts"][0]["host_key_recorded"] is None
    assert len(known_hosts.read_text().splitlines()) == 1


def test_accept_new_host_key_never_replaces_a_changed_key(
    sshd: tuple[int, paramiko.PKey], known_hosts: Path, login_key: Path
) -> None:
    port, _ = sshd
    other = paramiko.ECDSAKey.generate()
    line = f"[127.0.0.1]:{port} {other.get_name()} {other.get_base64()}\n"
    known_hosts.write_text(line)
    result = _scan_sshd(known_hosts, port, login_key, "--accept-new-host-key")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)["hosts"]
    assert "differs" in row["error"]["error"] and row["host_key_recorded"] is None
    assert known_hosts.read_text() == line


def test_accept_new_host_key_creates_a_missing_known_hosts(
    sshd: tuple[int, paramiko.PKey], tmp_path: Path, login_key: Path
) -> None:
    port, host_key = sshd
    known_hosts = tmp_path / "new" / "known_hosts"
    failed(_scan_sshd(known_hosts, port, login_key, "--accept-new-host-key"), "no directory")
    known_hosts.parent.mkdir()
    result = _scan_sshd(known_hosts, port, login_key, "--accept-new-host-key")
    assert result.exit_code == 0, result.output
    assert host_key.get_base64() in known_hosts.read_text()


def test_a_host_that_refuses_connections_is_a_row(known_hosts: Path, login_key: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    started = time.monotonic()
    result = _scan_sshd(known_hosts, port, login_key, "--accept-new-host-key")
    assert result.exit_code == 1 and time.monotonic() - started < 10
    (row,) = json.loads(result.stdout)["hosts"]
    assert row["verdict"] == "unreachable" and "failed" in row["error"]["error"]
