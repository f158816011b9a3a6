"""An app's packages against the fleet's record; `provision --app` (playbook run faked)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from ansible_collections.fledge.edge.plugins.plugin_utils import packages
from fledge import app_packages, inventory
from fledge.commands import playbooks as playbooks_cmd
from fledge.errors import FledgeError
from fledge.main import app
from fledge.runner import HostRecap, PlaybookResult

runner = CliRunner()
X86 = {"arch": "x86_64", "python": "3.11", "glibc": "2.36"}
BASE = {"flwr": "1.42.0", "numpy": "2.3.4", "requests": "2.32.5"}


def fledge(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(
        "all:\n  children:\n"
        "    superlink:\n      hosts:\n        coordinator: {ansible_host: 10.0.0.1}\n"
        "    supernodes:\n      hosts:\n        pi-1: {ansible_host: 10.0.0.21}\n"
        "        pi-2: {ansible_host: 10.0.0.22}\n"
    )
    return path


def record(fleet: Path, **extra: dict[str, str]) -> None:
    """What provisioning records: every host the base set, some more."""
    packages.record(
        fleet.parent / ".fledge",
        {
            host: {"platform": X86, "packages": BASE | extra.get(host.replace("-", "_"), {})}
            for host in ("coordinator", "pi-1", "pi-2")
        },
    )


def make_app(tmp_path: Path, dependencies: list[str]) -> Path:
    path = tmp_path / "app"
    path.mkdir(exist_ok=True)
    (path / "pyproject.toml").write_text(
        '[project]\nname = "a"\nversion = "1.0.0"\n'
        f"dependencies = {json.dumps(dependencies)}\n"
        '[tool.flwr.app]\npublisher = "me"\n'
        '[tool.flwr.app.components]\nserverapp = "a:s"\nclientapp = "a:c"\n'
        "[tool.flwr.app.config]\nnum-server-rounds = 1\n"
    )
    return path


# --- the record -------------------------------------------------------------


def test_an_archives_packages_come_from_its_wheel_names(tmp_path: Path) -> None:
    archive = tmp_path / "wheels.tar"
    with tarfile.open(archive, "w") as tar:
        for name in (
            "flwr-1.42.0-py3-none-any.whl",
            "scikit_learn-1.7.2-cp311-cp311-manylinux_2_17_x86_64.whl",
            "requirements.txt",
        ):
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    assert packages.archive_packages(archive) == {"flwr": "1.42.0", "scikit-learn": "1.7.2"}


def test_a_later_record_replaces_its_hosts_only(tmp_path: Path) -> None:
    packages.record(tmp_path, {"a": {"packages": {"x": "1"}}, "b": {"packages": {"x": "1"}}})
    packages.record(tmp_path, {"b": {"packages": {"x": "2"}}})
    assert packages.read(tmp_path) == {"a": {"packages": {"x": "1"}}, "b": {"packages": {"x": "2"}}}
    assert (tmp_path / packages.RECORD).stat().st_mode & 0o777 == 0o600


def test_a_damaged_record_says_how_to_recover(tmp_path: Path) -> None:
    (tmp_path / packages.RECORD).write_text("{")
    with pytest.raises(FledgeError, match="cannot be read") as caught:
        packages.read(tmp_path)
    assert "next provisioning" in str(caught.value.fix)


# --- shortfalls -------------------------------------------------------------

RECORDED = {
    "a": {"platform": X86, "packages": {"flwr": "1.42.0", "numpy": "2.3.4", "pandas": "2.2.0"}},
    "b": {"platform": X86 | {"arch": "aarch64"}, "packages": {"flwr": "1.42.0", "numpy": "1.26.0"}},
}


def short(*lines: str) -> list[str]:
    found = packages.shortfalls([Requirement(line) for line in lines], RECORDED, ["a", "b"])
    return [s.describe() for s in found]


def test_met_requirements_are_no_shortfall() -> None:
    assert short("flwr[simulation]>=1.40", "numpy>=1.26", "NumPy") == []


def test_a_package_missing_on_some_hosts_names_them() -> None:
    assert short("pandas>=2") == ["pandas>=2 (missing on b)"]


def test_another_version_names_the_version_and_hosts() -> None:
    assert short("numpy>=2") == ["numpy>=2 (1.26.0 on b)"]


def test_markers_are_read_for_each_hosts_platform() -> None:
    assert short("pandas; platform_machine == 'x86_64'") == []
    assert short("torch; python_version < '3.11'") == []


# --- round start ------------------------------------------------------------


def test_a_run_that_would_fail_to_import_is_refused(fleet: Path, tmp_path: Path) -> None:
    record(fleet, pi_1={"tabulate": "0.9.0"})
    app_dir = make_app(tmp_path, ["flwr>=1.40", "tabulate>=0.9"])
    result = fledge("round", "start", "-i", fleet, "--app", app_dir)
    assert result.exit_code == 1
    text = " ".join(result.stderr.split())
    assert "tabulate>=0.9 (missing on coordinator, pi-2)" in text
    assert f"fledge provision -i {fleet} --app {app_dir}" in text


def test_an_app_for_another_flower_is_refused(fleet: Path, tmp_path: Path) -> None:
    record(fleet)
    result = fledge("round", "start", "-i", fleet, "--app", make_app(tmp_path, ["flwr==1.41.0"]))
    assert result.exit_code == 1
    assert "the fleet runs flwr 1.42.0 (flower_version)" in " ".join(result.stderr.split())


def test_the_check_reads_the_record_only(fleet: Path, tmp_path: Path) -> None:
    fl = inventory.load(fleet)
    assert app_packages.check(fl, make_app(tmp_path, ["tabulate"])).unrecorded == [
        "coordinator",
        "pi-1",
        "pi-2",
    ]
    record(fleet)
    found = app_packages.check(fl, make_app(tmp_path, ["numpy>=1.26"]))
    assert found.shortfalls == [] and found.unrecorded == []


def test_dependencies_that_are_not_requirements_name_the_file(fleet: Path, tmp_path: Path) -> None:
    with pytest.raises(FledgeError, match="not a requirement specifier") as caught:
        app_packages.check(inventory.load(fleet), make_app(tmp_path, ["numpy >>> 2"]))
    assert caught.value.path == tmp_path / "app" / "pyproject.toml"


# --- provision --app --------------------------------------------------------


@pytest.fixture
def plays(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    calls: list[dict] = []

    def run_playbook(playbook, inventory_path, state_dir, **kwargs):
        calls.append(kwargs)
        recap = {h: HostRecap(ok=1) for h in ("coordinator", "pi-1", "pi-2")}
        return PlaybookResult(0, "successful", recap)

    monkeypatch.setattr(playbooks_cmd, "run_playbook", run_playbook)
    return calls


def app_packages_file(fleet: Path) -> Path:
    return fleet.parent / ".fledge" / "app-packages.txt"


def test_provision_app_records_and_installs_its_packages(
    fleet: Path, tmp_path: Path, plays: list[dict]
) -> None:
    app_dir = make_app(tmp_path, ["flwr>=1.40", "tabulate>=0.9", "numpy"])
    result = fledge("provision", "-i", fleet, "--app", app_dir)
    assert result.exit_code == 0, result.output
    assert plays[0]["extravars"]["_common_app_packages"] == ["tabulate>=0.9", "numpy"]
    lines = app_packages_file(fleet).read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["tabulate>=0.9", "numpy"]
    # A second app keeps the first one's packages; a new specifier replaces the old.
    other = tmp_path / "other"
    make_app(tmp_path, ["tabulate>=0.9.1", "toolz"]).rename(other)
    assert fledge("provision", "-i", fleet, "--app", other).exit_code == 0
    assert plays[1]["extravars"]["_common_app_packages"] == ["tabulate>=0.9.1", "numpy", "toolz"]


def test_a_dry_run_with_an_app_writes_nothing(
    fleet: Path, tmp_path: Path, plays: list[dict]
) -> None:
    app_dir = make_app(tmp_path, ["tabulate"])
    assert fledge("provision", "-i", fleet, "--app", app_dir, "--check").exit_code == 0
    assert plays[0]["extravars"]["_common_app_packages"] == ["tabulate"]
    assert not app_packages_file(fleet).exists()


def test_provision_refuses_an_app_for_another_flower(
    fleet: Path, tmp_path: Path, plays: list[dict]
) -> None:
    result = fledge("provision", "-i", fleet, "--app", make_app(tmp_path, ["flwr<1.40"]))
    assert result.exit_code == 1 and "flower_version" in result.stderr
    assert plays == [] and not app_packages_file(fleet).exists()


def test_a_damaged_app_packages_file_is_named(
    fleet: Path, tmp_path: Path, plays: list[dict]
) -> None:
    app_packages_file(fleet).parent.mkdir(mode=0o700)
    app_packages_file(fleet).write_text("tabulate\n!!! nonsense\n")
    result = fledge("provision", "-i", fleet, "--app", make_app(tmp_path, ["toolz"]))
    assert result.exit_code == 1 and "app-packages.txt" in result.stderr
    assert plays == []
