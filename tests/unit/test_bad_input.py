"""Bad input: a clear error (file, line, field, fix; exit 1; nothing written), no traceback."""

from __future__ import annotations

import json
import stat
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fledge import addresses, inventory
from fledge.commands import certs
from fledge.commands import playbooks as playbooks_cmd
from fledge.errors import FledgeError
from fledge.fsutil import PRIVATE_FILE, atomic_write, private_dir
from fledge.main import app

runner = CliRunner()


def fledge(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def failed(result, *words: str) -> bool:
    """Exit code 1, each word in the message on stderr, and no traceback anywhere."""
    text = result.stderr + result.stdout
    assert result.exit_code == 1, text
    assert isinstance(result.exception, SystemExit), f"crashed: {result.exception!r}"
    assert "Traceback" not in text
    missing = [w for w in words if w not in result.stderr]
    assert not missing, f"{missing} not in: {result.stderr}"
    return True


def write_inventory(path: Path, superlink_vars: str = "") -> Path:
    """A two-host inventory; ``superlink_vars`` is YAML flow text such as ``a: 1``."""
    coordinator = ", ".join(v for v in ("ansible_host: 10.0.0.1", superlink_vars) if v)
    path.write_text(
        "all:\n  children:\n"
        f"    superlink:\n      hosts:\n        coordinator: {{{coordinator}}}\n"
        "    supernodes:\n      hosts:\n        pi-1: {ansible_host: 10.0.0.21}\n"
    )
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- inventory generate --hosts-file: what spreadsheets write ------------------

HEADER = "role,name,address,user,port\n"
COORDINATOR = "superlink,coordinator,10.0.0.1,,\n"


def generate_from(tmp_path: Path, data: bytes) -> tuple:
    hosts = tmp_path / "hosts.csv"
    hosts.write_bytes(data)
    out = tmp_path / "inv.yml"
    return fledge("inventory", "generate", "--hosts-file", hosts, "-o", out), hosts, out


def test_excel_byte_order_mark_is_read(tmp_path: Path) -> None:
    text = HEADER + COORDINATOR + "supernode,pi-1,10.0.0.21,pi,2222\n"
    result, _, out = generate_from(tmp_path, b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert result.exit_code == 0, result.output
    (device,) = inventory.load(out).supernodes
    assert (device.name, device.user, device.port) == ("pi-1", "pi", 2222)


def test_a_csv_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    latin1 = (HEADER + COORDINATOR + "supernode,caf\xe9,10.0.0.21,,\n").encode("latin-1")
    result, hosts, out = generate_from(tmp_path, latin1)
    assert failed(result, f"{hosts}:3", "not UTF-8", "CSV UTF-8")
    assert not out.exists()


def test_a_row_with_too_few_columns_names_file_and_line(tmp_path: Path) -> None:
    # The address is missing: without the check, 'pi' would become the address.
    data = HEADER + COORDINATOR + "\nsupernode,pi-1,pi,2222\n"
    result, hosts, out = generate_from(tmp_path, data.encode())
    assert failed(result, f"{hosts}:4", "4 fields", "header has 5", "fix:")
    assert not out.exists()


@pytest.mark.parametrize(
    ("rows", "lines"),
    [
        ("supernode,pi-1,10.0.0.21,,\nsupernode,pi-1,10.0.0.22,,\n", (3, 4)),
        ("supernode,coordinator,10.0.0.21,,\n", (2, 3)),
    ],
)
def test_a_name_given_twice_in_the_csv_names_both_lines(
    tmp_path: Path, rows: str, lines: tuple[int, int]
) -> None:
    result, hosts, out = generate_from(tmp_path, (HEADER + COORDINATOR + rows).encode())
    first, second = lines
    assert failed(result, "given twice", f"hosts.csv:{first} and", f"{hosts}:{second}", "name")
    assert not out.exists()


@pytest.mark.parametrize(
    ("devices", "words"),
    [
        (["pi-1=10.0.0.21", "pi-1=10.0.0.22"], ("--device 'pi-1=10.0.0.21' and", "10.0.0.22")),
        (["c=10.0.0.21"], ("--superlink 'c=10.0.0.1' and --device 'c=10.0.0.21'",)),
    ],
)
def test_a_name_given_twice_in_options_names_both(
    tmp_path: Path, devices: list[str], words: tuple[str, ...]
) -> None:
    out = tmp_path / "inv.yml"
    args = [a for d in devices for a in ("-d", d)]
    result = fledge("inventory", "generate", "-s", "c=10.0.0.1", *args, "-o", out)
    assert failed(result, "given twice", *words)
    assert not out.exists()


def test_a_superscript_port_in_the_csv(tmp_path: Path) -> None:
    result, hosts, out = generate_from(
        tmp_path, (HEADER + COORDINATOR + "supernode,pi-1,10.0.0.21,,\u00b2\n").encode()
    )
    assert failed(result, f"{hosts}:3", "field 'port'", "'²' is not a port number", "fix:")
    assert not out.exists()


def test_a_superscript_port_in_an_option(tmp_path: Path) -> None:
    out = tmp_path / "inv.yml"
    result = fledge("inventory", "generate", "-s", "c=10.0.0.1", "-d", "d=10.0.0.2:²", "-o", out)
    assert failed(result, "'²' is not a port number", "fix:")
    assert not out.exists()
    with pytest.raises(ValueError, match="not a port number"):
        addresses.split_host_port("host:²")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-d", "pi-1\n=10.0.0.2"], ("'pi-1\\n' is not a usable host name",)),
        (["-d", "pi-1=pi\n@10.0.0.2"], ("'pi\\n' is not a valid Linux user name",)),
        (["-d", "pi-1=10.0.0.2", "-u", "pi\n"], ("field '--user'", "'pi\\n'")),
        (["-d", "pi-1=pi-1.lan\n"], ("not an IP address or host name",)),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_name(
    tmp_path: Path, args: list[str], words: tuple[str, ...]
) -> None:
    out = tmp_path / "inv.yml"
    result = fledge("inventory", "generate", "-s", "c=10.0.0.1", *args, "-o", out)
    assert failed(result, *words)
    assert not out.exists()


def test_address_checks_reject_a_trailing_newline() -> None:
    assert addresses.is_valid_address("pi-1") and not addresses.is_valid_address("pi-1\n")
    assert addresses.is_host_name("pi-1") and not addresses.is_host_name("pi-1\n")
    assert addresses.is_user_name("pi") and not addresses.is_user_name("pi\n")


def test_bad_csv_fields_name_the_line_not_the_inventory(tmp_path: Path) -> None:
    result, hosts, out = generate_from(
        tmp_path, (HEADER + COORDINATOR + "supernode,pi 1,10.0.0.21,,\n").encode()
    )
    assert failed(result, f"{hosts}:3", "field 'name'", "not a usable host name")
    assert str(out) not in result.stderr


# --- inventory generate -o: where it writes --------------------------------------


def generate_to(out: Path, *more: str):
    return fledge("inventory", "generate", "-s", "c=10.0.0.1", "-d", "d=10.0.0.2", "-o", out, *more)


def test_a_missing_output_directory_is_not_created(tmp_path: Path) -> None:
    out = tmp_path / "typo" / "inv.yml"
    result = generate_to(out)
    assert failed(result, "no directory", "field '--output'", "mkdir -p")
    assert not (tmp_path / "typo").exists()


def test_an_unwritable_output_directory_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "inv.yml"
    out.write_text("old\n")

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(tmp_path / ".inv.yml.x1y2"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = generate_to(out, "--force")
    assert failed(result, str(tmp_path), "Read-only file system", "writable")
    assert out.read_text() == "old\n"


def test_atomic_write_names_the_file_not_its_temporary_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / ".file.x1y2"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as caught:
        atomic_write(tmp_path / "file", "data")
    assert caught.value.filename == str(tmp_path / "file")


def test_force_keeps_a_private_inventory_private(tmp_path: Path) -> None:
    out = tmp_path / "inv.yml"
    assert generate_to(out).exit_code == 0
    assert mode(out) == 0o644
    out.chmod(0o600)
    assert generate_to(out, "--force").exit_code == 0
    assert mode(out) == 0o600


def test_atomic_write_keeps_the_mode_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "file"
    atomic_write(path, "a")
    path.chmod(0o640)
    atomic_write(path, "b")
    assert mode(path) == 0o640 and path.read_text() == "b"
    atomic_write(path, "c", PRIVATE_FILE)
    assert mode(path) == 0o600


# --- errors as JSON on stdout (--format json) ----------------------------------


def test_json_error_for_a_missing_inventory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yml"
    result = fledge("inventory", "check", "-i", missing, "--format", "json")
    assert failed(result, "inventory not found")
    doc = json.loads(result.stdout)
    assert doc["error"] == "inventory not found"
    assert doc["path"] == str(missing) and "fledge inventory generate" in doc["fix"]


def test_json_error_for_certs_without_a_ca(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    result = fledge("certs", "show", "-i", inv, "--format", "json")
    assert failed(result, "no certificate authority")
    doc = json.loads(result.stdout)
    assert doc["error"] == "no certificate authority found" and "fledge certs init" in doc["fix"]
    assert set(doc) <= {"error", "fix", "path", "line", "host", "field"}


def test_text_errors_leave_stdout_empty(tmp_path: Path) -> None:
    result = fledge("inventory", "check", "-i", tmp_path / "nowhere.yml")
    assert failed(result) and result.stdout == ""


# --- OS errors on a path: the path and the reason, no traceback ----------------


def test_a_state_dir_under_a_file_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "somefile"
    blocker.write_text("")
    state = blocker / "sub" / "state"
    inv = write_inventory(tmp_path / "inv.yml", f"fledge_state_dir: {state}")
    result = fledge("certs", "init", "-i", inv, "--format", "json")
    assert failed(result, "Not a directory", str(blocker / "sub"))
    assert json.loads(result.stdout)["path"].startswith(str(blocker))


def test_permission_denied_names_the_path_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, whom chmod does not stop: raise what a user would get.
    def denied(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "mkdir", denied)
    inv = write_inventory(tmp_path / "inv.yml")
    result = fledge("certs", "init", "-i", inv)
    assert failed(result, "Permission denied", str(tmp_path / ".fledge"), "fix:")


# --- the state dir, which holds the CA key ---------------------------------------


@pytest.mark.parametrize("shared_mode", [0o777, 0o1777, 0o775], ids=oct)
def test_a_state_dir_others_may_write_is_refused(tmp_path: Path, shared_mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(shared_mode)
    inv = write_inventory(tmp_path / "inv.yml", f"fledge_state_dir: {shared}")
    result = fledge("certs", "init", "-i", inv)
    assert failed(
        result, str(shared), "field 'fledge_state_dir'", "other users may write", "chmod 700"
    )
    assert mode(shared) == shared_mode  # not silently chmodded
    assert list(shared.iterdir()) == []


def test_provision_refuses_a_shared_state_dir_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    inv = write_inventory(tmp_path / "inv.yml", f"fledge_state_dir: {shared}")
    monkeypatch.setattr(playbooks_cmd, "run_playbook", lambda *a, **k: pytest.fail("ran"))
    assert failed(fledge("provision", "-i", inv), "field 'fledge_state_dir'")


def test_a_state_dir_only_its_owner_can_write_is_used(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    own.chmod(0o755)
    inv = write_inventory(tmp_path / "inv.yml", f"fledge_state_dir: {own}")
    result = fledge("certs", "init", "-i", inv)
    assert result.exit_code == 0, result.output
    assert mode(own) == 0o700 and (own / "pki" / "ca.key").exists()


def test_directories_fledge_creates_are_private_from_the_start(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b" / "state"
    inv = write_inventory(tmp_path / "inv.yml", f"fledge_state_dir: {state}")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    assert [mode(d) for d in (tmp_path / "a", tmp_path / "a" / "b", state)] == [0o700] * 3
    assert fledge("certs", "init", "-i", inv).exit_code == 0  # and fine the next time


def test_private_dir_refuses_a_shared_directory(tmp_path: Path) -> None:
    tmp_path.chmod(0o1777)
    with pytest.raises(FledgeError) as caught:
        private_dir(tmp_path)
    assert caught.value.path == tmp_path and "1777" in caught.value.message
    assert mode(tmp_path) == 0o1777
    tmp_path.chmod(0o700)


# --- certificates --------------------------------------------------------------


def pki_of(inv: Path) -> Path:
    return inv.parent / ".fledge" / "pki"


def test_a_superlink_named_ca_leaves_the_ca_alone(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    made = fledge("inventory", "generate", "-s", "ca=10.0.0.1", "-d", "d=10.0.0.2", "-o", inv)
    assert made.exit_code == 0, made.output
    result = fledge("certs", "init", "-i", inv, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ca"]["subject"] == "CN=fledge fleet CA" and doc["superlink"]["issued_by_ca"]
    assert doc["superlink"]["path"] == str(pki_of(inv) / "superlink.crt")


def test_an_extra_san_that_is_no_name_writes_nothing(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yml", "superlink_tls_extra_sans: ['bad name!']")
    result = fledge("certs", "init", "-i", inv)
    assert failed(result, "field 'superlink_tls_extra_sans'", "'bad name!'", "fix:")
    assert not (tmp_path / ".fledge").exists()


def test_show_names_a_corrupt_superlink_certificate(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    cert = pki_of(inv) / "superlink.crt"
    cert.write_text("garbage")
    result = fledge("certs", "show", "-i", inv)
    assert failed(result, str(cert), "cannot read", "fledge certs init")


def test_init_reissues_a_corrupt_superlink_certificate(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    cert = pki_of(inv) / "superlink.crt"
    cert.write_text("garbage")
    result = fledge("certs", "init", "-i", inv)
    assert result.exit_code == 0, result.output
    assert "Issued the SuperLink's certificate (unreadable)" in result.stderr
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("name", ["ca.crt", "ca.key"])
def test_a_corrupt_ca_is_named_not_replaced(tmp_path: Path, name: str) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    (pki_of(inv) / name).write_text("garbage")
    for command in ("show", "init"):
        result = fledge("certs", command, "-i", inv)
        assert failed(result, str(pki_of(inv) / name), "cannot read", "backup")
    assert (pki_of(inv) / name).read_text() == "garbage"


def test_force_keeps_the_replaced_ca(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    old_key = (pki_of(inv) / "ca.key").read_bytes()
    result = fledge("certs", "init", "-i", inv, "--force", "--format", "json")
    assert result.exit_code == 0, result.output
    kept = Path(json.loads(result.stdout)["replaced_ca"])
    assert kept.parent == pki_of(inv) / "replaced"
    assert (kept / "ca.key").read_bytes() == old_key != (pki_of(inv) / "ca.key").read_bytes()
    assert mode(kept) == 0o700 and mode(kept / "ca.key") == 0o600
    assert "to undo" in result.stderr and kept.name in result.stderr
    assert "replaced" in fledge("certs", "init", "--help").stdout


# --- text output: what rich would misread ----------------------------------------


def test_fingerprints_keep_their_cd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    describe = certs._describe

    def with_cd(path: Path, ca: object = None) -> dict:
        return describe(path, ca) | {"sha256": "12:cd:34"}  # rich's emoji code for a CD

    monkeypatch.setattr(certs, "_describe", with_cd)
    result = fledge("certs", "show", "-i", inv)
    assert result.exit_code == 0 and "12:cd:34" in result.stderr
