"""The benchmark suite's parts that need no lab: options, plans, the arithmetic, the
parsers of what lab hosts report, the table, the report and its chart (bench/fledge_bench)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fledge_bench import cli, machine, probes, report
from fledge_bench.chart import main_unit, panels, write_chart
from fledge_bench.floor import last_json
from fledge_bench.lab import REPO, Fleet
from fledge_bench.measure import BenchError, run
from fledge_bench.model import SECTIONS, Results, Row, median, pairwise_ratios, ratio
from fledge_bench.sections import footprint, provisioning, startup
from fledge_bench.suite import FleetPlan, fleet_plans

ROWS = [
    Row("provisioning", "1 device", "fledge provision, wall", 120.4, "s", 1.0, "ratio to 1 device"),
    Row("provisioning", "2 devices", "fledge provision, wall", 180.2, "s", 1.4966, "a | pipe"),
    Row("provisioning", "2 devices", "from the package index", 66.1, "MB"),
    Row("footprint", "2 devices, systemd runtime (pi-1)", "SuperNode, idle", 258.3, "MiB", 0.31),
    Row.error("rounds", "2 devices", "fledge round start failed (exit 1):\nno SuperLink"),
]


def results(rows: list[Row] = ROWS) -> Results:
    return Results(
        command="bench/run --sizes 1,2",
        started=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        machine={"cpu": "Some CPU @ 2.0GHz", "cores": "2", "docker": "20.10.24"},
        rows=list(rows),
        finished=datetime(2026, 3, 1, 13, 15, tzinfo=UTC),
        load_start=(2.0, 1.5, 1.0),
        load_end=(3.0, 2.5, 2.0),
        sections=("provisioning", "rounds", "footprint"),
        sizes=(1, 2),
    )


# The arithmetic.


def test_ratio_is_unknown_without_both_figures_or_with_nothing_to_divide_by() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None


def test_pairwise_ratios_and_their_median() -> None:
    ratios = pairwise_ratios([0.30, 0.40, 0.90], [0.10, 0.20, 0.30])
    assert ratios == pytest.approx([3.0, 2.0, 3.0])
    assert median(ratios) == pytest.approx(3.0)
    assert median([]) is None
    with pytest.raises(ValueError, match="pairs"):
        pairwise_ratios([1.0], [1.0, 2.0])


def test_results_are_json_and_know_their_failures() -> None:
    found = results()
    assert [row.section for row in found.failures] == ["rounds"]
    doc = json.loads(json.dumps(found.to_json()))
    assert doc["rows"][0] == {
        "section": "provisioning",
        "case": "1 device",
        "figure": "fledge provision, wall",
        "value": 120.4,
        "unit": "s",
        "ratio": 1.0,
        "notes": "ratio to 1 device",
    }
    assert doc["load_average"]["end"] == [3.0, 2.5, 2.0]


# Options and plans.


def test_options_default_to_every_section_on_fleets_of_1_2_and_4() -> None:
    options = cli.parse([])
    assert options.sections == SECTIONS
    assert options.sizes == (1, 2, 4)
    assert options.output == REPO / "docs" / "benchmarks.md"
    assert options.chart == REPO / "docs" / "benchmarks.png"
    assert (options.json, options.keep, options.arm64) == (None, False, False)


def test_options_select_sections_in_the_suites_order_and_sizes_sorted(tmp_path: Path) -> None:
    options = cli.parse(
        ["--only", "rounds", "--only", "provisioning", "--sizes", "4,1,2,2", "--arm64",
         "--keep", "--json", str(tmp_path / "raw.json"), "--output", str(tmp_path / "b.md")]
    )  # fmt: skip
    assert options.sections == ("provisioning", "rounds")
    assert options.sizes == (1, 2, 4)
    assert options.arm64 and options.keep
    assert options.json == tmp_path / "raw.json"
    assert options.output == tmp_path / "b.md"


@pytest.mark.parametrize(
    "argv", [["--sizes", "two"], ["--sizes", "0,1"], ["--sizes", ","], ["--only", "nothing"]]
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse(argv)
    assert exited.value.code == 2
    assert "bench/run" in capsys.readouterr().err


def test_help_runs_through_the_wrapper() -> None:
    result = subprocess.run(
        [str(REPO / "bench" / "run"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--only SECTION" in result.stdout and "--arm64" in result.stdout


def test_each_fleet_runs_the_sections_that_need_it() -> None:
    plans = fleet_plans(SECTIONS, (1, 2, 4), arm64=False)
    assert plans == [
        FleetPlan(1, None, ("provisioning", "rerun")),
        FleetPlan(2, None, ("provisioning", "rerun", "ansible-settings", "rounds", "footprint")),
        FleetPlan(4, None, ("provisioning", "rerun", "rounds")),
    ]
    assert [p.case for p in plans] == ["1 device", "2 devices", "4 devices"]


def test_a_fleet_of_two_is_added_when_no_size_has_two_devices() -> None:
    plans = fleet_plans(("provisioning", "rounds", "footprint"), (1,), arm64=False)
    assert plans == [
        FleetPlan(1, None, ("provisioning",)),
        FleetPlan(2, None, ("rounds", "footprint")),
    ]
    # The smallest size of at least two, not two itself.
    assert fleet_plans(("ansible-settings",), (1, 3, 4), arm64=False) == [
        FleetPlan(3, None, ("ansible-settings",))
    ]


def test_startup_alone_needs_no_fleet_and_arm64_comes_last() -> None:
    assert fleet_plans(("startup",), (1, 2, 4), arm64=False) == []
    plans = fleet_plans(("rerun",), (2,), arm64=True)
    assert plans[-1] == FleetPlan(1, "arm64", ("provisioning", "rerun"))
    assert plans[-1].case == "1 device, arm64 (emulated)"


# The command, with the suite faked.


class FakeSuite:
    """Stands in for the suite: adds rows, then stops as a run can stop."""

    rows = ROWS[:4]
    outcome: BaseException | None = None

    def __init__(self, results: Results, keep: bool, arm64: bool, log: object) -> None:
        self.results = results

    def run(self) -> None:
        self.results.rows.extend(self.rows)
        if self.outcome is not None:
            raise self.outcome


@pytest.fixture
def faked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    monkeypatch.setattr(cli, "Suite", FakeSuite)
    monkeypatch.setattr(cli.machine, "describe", lambda: {"cpu": "Test CPU", "cores": "2"})
    monkeypatch.setattr(FakeSuite, "outcome", None)
    return [
        "--output",
        str(tmp_path / "docs" / "b.md"),
        "--chart",
        str(tmp_path / "docs" / "b.png"),
    ]


def test_the_command_prints_the_table_and_writes_the_files(
    faked: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*faked, "--json", str(tmp_path / "raw.json"), "--only", "rounds"]) == 0
    assert "fledge provision, wall" in capsys.readouterr().out
    text = (tmp_path / "docs" / "b.md").read_text()
    assert "![The figures of the table, by section](b.png)" in text
    assert "--only rounds`" in text and "| cpu | Test CPU |" in text
    assert (tmp_path / "docs" / "b.png").read_bytes().startswith(b"\x89PNG")
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert len(raw["rows"]) == 4 and raw["sections"] == ["rounds"] and raw["finished"]


def test_update_measures_one_section_again_and_keeps_the_others(
    faked: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(results().to_json()))
    again = [Row("footprint", "2 devices, systemd runtime (pi-1)", "SuperNode, idle", 250.0, "MiB")]
    monkeypatch.setattr(FakeSuite, "rows", again)
    raw = tmp_path / "raw.json"
    argv = [*faked, "--only", "footprint", "--update", str(earlier), "--json", str(raw)]
    assert cli.main(argv) == 0
    doc = json.loads(raw.read_text())
    # The footprint is this run's; provisioning and rounds come from the earlier run.
    assert [(r["section"], r["value"]) for r in doc["rows"]] == [
        ("provisioning", 120.4), ("provisioning", 180.2), ("provisioning", 66.1),
        ("rounds", None), ("footprint", 250.0),
    ]  # fmt: skip
    assert doc["sections"] == ["provisioning", "rounds", "footprint"]
    when = "2026-03-01 (`bench/run --sizes 1,2`)"
    assert doc["earlier"] == {"provisioning": when, "rounds": when}
    text = (tmp_path / "docs" / "b.md").read_text()
    assert f"provisioning, measured on {when}" in text and "| 180 |" in text


def test_update_refuses_a_file_that_is_not_a_run_before_measuring(
    faked: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeSuite, "outcome", AssertionError("the suite ran"))
    (tmp_path / "bad.json").write_text('{"rows": "none"}')
    assert cli.main([*faked, "--update", str(tmp_path / "bad.json")]) == 2
    assert cli.main([*faked, "--update", str(tmp_path / "missing.json")]) == 2
    assert not (tmp_path / "docs").exists()


def test_a_failed_section_makes_the_command_fail(
    faked: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeSuite, "rows", ROWS)  # the last one is an error
    assert cli.main(faked) == 1
    assert "What failed" in (tmp_path / "docs" / "b.md").read_text()


@pytest.mark.parametrize(("outcome", "status"), [(KeyboardInterrupt(), 130), (BenchError("x"), 2)])
def test_an_interrupted_or_impossible_run_writes_nothing(
    faked: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: BaseException,
    status: int,
) -> None:
    monkeypatch.setattr(FakeSuite, "outcome", outcome)
    assert cli.main(faked) == status
    assert not (tmp_path / "docs").exists()


# The table and the report.


def test_values_are_shown_with_sensible_precision() -> None:
    assert [report.format_value(v) for v in (1234.5, 42.26, 1.234, 0.0123, 0.0, None)] == [
        "1234", "42.3", "1.23", "0.012", "0.00", "n/a"
    ]  # fmt: skip
    assert report.format_ratio(1.4966) == "1.50x" and report.format_ratio(None) == ""


def test_the_text_table_is_aligned() -> None:
    table = report.render_table(ROWS)
    lines = table.splitlines()
    assert lines[0].split() == ["section", "case", "figure", "value", "unit", "ratio", "/", "notes"]
    # The rule under the header marks each column; values end where theirs ends.
    spans = [m.span() for m in re.finditer("-+", lines[1])]
    assert len(spans) == len(report.COLUMNS)
    start, end = spans[report.COLUMNS.index("value")]
    values = [line[start:end] for line in lines[2:]]
    assert values == ["  120", "  180", " 66.1", "  258", "     "]
    assert "1.50x; a | pipe" in table
    # An error row has no value, and its message on one line.
    error = next(line for line in lines if line.startswith("rounds"))
    assert "fledge round start failed (exit 1): / no SuperLink" in error


def test_the_markdown_table_escapes_what_markdown_would_read() -> None:
    table = report.markdown_table(ROWS)
    lines = table.splitlines()
    assert lines[0] == "| section | case | figure | value | unit | ratio / notes |"
    assert lines[1] == "|---|---|---|---:|---|---|"
    assert "| 1.50x; a \\| pipe |" in table
    assert all(line.count(" | ") == 5 for line in lines if line.startswith("| "))


def test_the_document_has_the_results_the_machine_the_method_and_notes(tmp_path: Path) -> None:
    output, chart = tmp_path / "docs" / "benchmarks.md", tmp_path / "docs" / "benchmarks.png"
    text = report.render_markdown(results(), chart, output)
    assert text.startswith("# Benchmarks\n")
    assert "2026-03-01 12:00 UTC" in text and "`bench/run --sizes 1,2`" in text
    assert "![The figures of the table, by section](benchmarks.png)" in text
    assert report.markdown_table(ROWS) in text
    assert "| cpu | Some CPU @ 2.0GHz |" in text and "| docker | 20.10.24 |" in text
    assert "| load average, start | 2.00 1.50 1.00 |" in text
    assert "| duration of the run | 75 min |" in text
    # The method of each section that ran, from its module's docstring; no other.
    assert "### provisioning" in text and "### footprint" in text and "### rounds" in text
    assert "### startup" not in text and "### rerun" not in text
    assert report.method_text("rounds").splitlines()[0] in text
    assert "ansible-settings and footprint: the smallest size of at least 2" in text
    # Notes: the assumption about a Pi, preflight's requirements, what failed.
    assert "~824 MiB" in text
    assert "`preflight_requirements`" in text
    assert "```text\nfledge round start failed (exit 1):\nno SuperLink\n```" in text
    # Every command the document names exists.
    assert "bench/run --sizes 1,2 --only provisioning --only rerun" in text


def test_a_document_without_figures_or_chart(tmp_path: Path) -> None:
    empty = results([])
    text = report.render_markdown(empty, None, tmp_path / "benchmarks.md")
    assert "No figures yet." in text and "![" not in text
    assert "What failed" not in text


def test_the_chart_is_a_png_of_the_rows_with_values(tmp_path: Path) -> None:
    path = tmp_path / "out" / "chart.png"
    references = {"footprint": (824.0, "what a 1 GB Pi can spare")}
    assert write_chart(ROWS, path, "fledge benchmarks", references)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    drawn = panels(ROWS)
    assert list(drawn) == ["provisioning", "footprint"]  # rounds only failed
    assert drawn["provisioning"][0] == "s" and len(drawn["provisioning"][1]) == 2
    assert main_unit([ROWS[2], ROWS[3], ROWS[3]]) == "MiB"


def test_no_chart_without_a_figure(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    assert not write_chart([ROWS[-1]], path, "nothing")
    assert not path.exists()


# What lab hosts report.

CONTROL_GROUPS = """\
ControlGroup=/docker/98a1af706e2a/system.slice/fledge-supernode.service

ControlGroup=

ControlGroup=/docker/98a1af706e2a/system.slice/containerd.service
"""
HYBRID_V1 = """\
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,size=4096k,nr_inodes=1024,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
"""
PURE_V2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"


def test_control_groups_of_running_units_only() -> None:
    assert probes.parse_control_groups(CONTROL_GROUPS) == [
        "/docker/98a1af706e2a/system.slice/fledge-supernode.service",
        "/docker/98a1af706e2a/system.slice/containerd.service",
    ]
    assert probes.control_groups_command(["a.service", "b.service"]) == [
        "systemctl", "show", "--property=ControlGroup", "a.service", "b.service"
    ]  # fmt: skip


def test_cgroup_directories_on_v1_hybrid_and_v2_hosts() -> None:
    group = "/system.slice/fledge-supernode.service"
    assert probes.cgroup_dirs(group, HYBRID_V1) == [
        "/sys/fs/cgroup/memory" + group,
        "/sys/fs/cgroup/systemd" + group,
        "/sys/fs/cgroup/unified" + group,
    ]
    assert probes.cgroup_dirs(group, PURE_V2) == ["/sys/fs/cgroup" + group]
    assert probes.cgroup_dirs(group, "proc /proc proc rw 0 0\n") == []


STATUS_DUMP = """\
== 7466
Name:\tflower-supernod
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  200000 kB
VmRSS:\t  137428 kB
Threads:\t12
== 7476
Name:\tflower-superexe
VmRSS:\t  126880 kB
== 2
Name:\tkthreadd
State:\tS (sleeping)
"""


def test_processes_and_their_resident_memory() -> None:
    processes = probes.parse_processes(STATUS_DUMP)
    assert processes == [
        probes.ProcessMemory(7466, "flower-supernod", 137428),
        probes.ProcessMemory(7476, "flower-superexe", 126880),
        probes.ProcessMemory(2, "kthreadd", 0),
    ]
    assert probes.total_mib(processes) == pytest.approx((137428 + 126880) / 1024)
    assert probes.describe(processes) == "flower-supernod 134, flower-superexe 124, kthreadd 0"
    assert probes.parse_vmrss("Name:\tx\nVmRSS:\t 12 kB\n") == 12
    assert probes.parse_processes("") == [] and probes.describe([]) == "no processes"


def test_the_process_listing_reads_a_cgroup_and_proc(tmp_path: Path) -> None:
    """The shell side of the memory probe, here on a fake cgroup holding this process."""
    group = tmp_path / "system.slice" / "x.service"
    (group / "nested").mkdir(parents=True)
    (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (group / "nested" / "cgroup.procs").write_text(f"{os.getpid()}\n999999999\n")
    command = probes.processes_command([str(group), str(tmp_path / "missing")])
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    (found,) = probes.parse_processes(
        output
    )  # once, and the process that does not exist not at all
    assert found.pid == os.getpid() and found.rss_kib > 1000


APT_BEFORE = """\
1372852 /var/cache/apt/archives/apt_2.6.1_amd64.deb
91848 /var/cache/apt/archives/dash_0.5.12-2_amd64.deb
0 /var/cache/apt/archives/lock
"""
APT_AFTER = (
    APT_BEFORE
    + """\
26000000 /var/cache/apt/archives/docker.io_20.10.24+dfsg1-1+b3_amd64.deb
1400000 /var/cache/apt/archives/apt_2.6.1+deb12u1_amd64.deb
5000 /var/cache/apt/archives/partial/python3-venv_3.11.2-1+b1_amd64.deb
0 /var/lib/apt/lists/lock
45000000 /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages
200000 /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease
not a line
"""
)


def test_apt_bytes_are_what_provisioning_added() -> None:
    before, after = probes.parse_sizes(APT_BEFORE), probes.parse_sizes(APT_AFTER)
    assert before["/var/cache/apt/archives/lock"] == 0 and "not a line" not in str(after)
    fetched = probes.apt_fetched(before, after)
    assert fetched.archives == 26000000 + 1400000 + 5000
    assert fetched.lists == 45000000 + 200000
    assert fetched.total == fetched.archives + fetched.lists
    assert probes.apt_fetched(after, after).total == 0


def test_bytes_received_by_a_host() -> None:
    before = probes.parse_rx("eth0 1000\nlo 50\n")
    after = probes.parse_rx("eth0 91000\nlo 80\ndocker0 7\n")
    assert probes.received(before, after, "eth0") == 90000
    assert probes.received(before, after, "docker0") is None


def test_disk_usage() -> None:
    assert probes.parse_du("312044\t/opt/fledge\n") == 312044
    assert probes.du_command("/opt/fledge") == ["du", "-skx", "/opt/fledge"]
    with pytest.raises(ValueError):
        probes.parse_du("")


# The machine.


def test_machine_facts_from_proc() -> None:
    x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t: fpu\n"
    pi = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4 B\n"
    assert machine.cpu_model(x86) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert machine.cpu_model(pi) == "Raspberry Pi 4 B"
    assert machine.memory_bytes("MemTotal:       24576000 kB\nMemFree: 1 kB\n") == 24576000 * 1024
    assert machine.memory_bytes("") is None
    assert machine.os_name('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == (
        "Debian GNU/Linux 12 (bookworm)"
    )


# Processes.


def test_a_process_is_timed_and_its_cpu_counted_with_its_children() -> None:
    burn = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(range(10**7))'])"
    result = run([sys.executable, "-c", burn], timeout=60)
    assert result.ok and result.wall > 0
    # The grandchild's work counts: it was waited for.
    assert result.cpu >= 0.1


def test_a_process_that_takes_too_long_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(BenchError, match="took longer than 1 s"):
        # A background job of a script ignores SIGINT: it takes SIGKILL to end it.
        run(["sh", "-c", f"echo $$ > {pid_file}; sleep 60 & sleep 60; wait"], timeout=1)
    assert time.monotonic() - started < 20
    # Nothing is left of its process group, once the killed are reaped (by init).
    group = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process group {group} survived")


def test_a_failed_process_says_how() -> None:
    result = run([sys.executable, "-c", "import sys; sys.exit('no engine here')"], timeout=60)
    assert not result.ok and result.tail() == "no engine here"
    with pytest.raises(BenchError, match="failed \\(exit 1\\):\nno engine here"):
        result.check("the probe")


# Sections, their parts that need no lab.


def test_startup_alternates_after_a_warm_up() -> None:
    calls: list[str] = []
    fake = {"A": 0.3, "B": 0.1}

    def timer(command: list[str] | tuple[str, ...]) -> float:
        calls.append(command[0])
        return fake[command[0]]

    times_a, times_b = startup.alternate(["A"], ["B"], repeats=3, timer=timer)
    assert calls == ["A", "B", "A", "B", "A", "B", "A", "B"]
    assert (times_a, times_b) == ([0.3] * 3, [0.1] * 3)


def test_startup_rows_give_medians_and_the_median_ratio() -> None:
    def timer(command: list[str] | tuple[str, ...]) -> float:
        return 0.1 if command[-1] == "import typer" else 0.25

    rows = startup.run_all(repeats=2, timer=timer)
    assert [row.case for row in rows] == [*startup.COMMANDS, startup.BASELINE_NAME]
    assert rows[0].value == pytest.approx(0.25) and rows[0].ratio == pytest.approx(2.5)
    assert rows[-1].value == pytest.approx(0.1) and rows[-1].ratio is None


def test_the_wheelhouse_is_counted_without_checksums_or_scratch(tmp_path: Path) -> None:
    folder = tmp_path / "fledge" / "wheelhouse"
    folder.mkdir(parents=True)
    (folder / "x86_64-py3.11-glibc2.36-abc.tar").write_bytes(b"w" * 1000)
    (folder / "x86_64-py3.11-glibc2.36-abc.tar.sha256").write_text("digest\n")
    (folder / ".x86_64-py3.11-glibc2.36-abc.tar.lock").write_text("")
    assert provisioning.wheelhouse_bytes(tmp_path) == (1000, 1)
    assert provisioning.wheelhouse_bytes(tmp_path / "empty") == (0, 0)


def test_preflight_requirements_are_read_from_the_collection() -> None:
    requirements = footprint.preflight_requirements()
    assert {"systemd", "container"} <= set(requirements)
    assert footprint.requirement(requirements, "systemd", "memory_mb").startswith(
        "preflight requires "
    )
    assert footprint.requirement(requirements, "nothing", "memory_mb") == ""


def test_a_fleets_processes_get_its_own_cold_cache(tmp_path: Path) -> None:
    fleet = Fleet("bench-2", 2, None, tmp_path / "bench-2", tmp_path / "cache", tmp_path / "mpl")
    env = fleet.env()
    assert env["XDG_CACHE_HOME"] == str(tmp_path / "cache")
    assert env["MPLCONFIGDIR"] == str(tmp_path / "mpl")
    assert "FLEDGE_INVENTORY" not in env
    assert fleet.hosts == ["coordinator", "pi-1", "pi-2"]
    assert fleet.container("pi-1") == "bench-2-pi-1" and fleet.kind == "native"
    fleet.directory.mkdir()
    fleet.host_vars("pi-1", "---\nfledge_runs_keep: 6\n")
    assert (fleet.directory / "host_vars" / "pi-1.yml").read_text().endswith("6\n")
    fleet.host_vars("pi-1", None)
    assert not (fleet.directory / "host_vars" / "pi-1.yml").exists()


def test_flwr_json_is_found_after_other_output() -> None:
    text = 'Loading project configuration...\n{\n  "success": true,\n  "run-id": 42\n}\n'
    assert last_json(text) == {"success": True, "run-id": 42}
    assert last_json("no json\n{broken\n") is None
