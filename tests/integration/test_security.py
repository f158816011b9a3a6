"""Secure by default, on the shared fleet: what a device, a rogue and the operator can reach.

- The control plane: from a device, with the fleet's CA certificate, the
  Control API (`flwr ls`, `flwr run`) and the Runtime API are refused by the
  coordinator's proxy, which passes the Fleet API and /health only; the
  operator reaches the Control API through SSH (`fledge round`, and `fledge
  tunnel` for the plain flwr CLI).
- Device identity: a SuperNode with a fresh key and the right CA (a rogue
  device) is refused; a revoked device cannot come back with its old key;
  provisioning refuses it until asked to enrol it again, with a new key; then
  it trains again.
- Certificates: `fledge certs status` sees the certificate the coordinator
  serves; `fledge certs rotate` refuses while a run is in progress, and
  otherwise installs a new one, after which the devices are back by themselves
  (in the longer test command: it waits for a run and for every device).
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from fledge import inventory
from fledge.flower.cli import last_json_object

from helpers import BIN, REPO, fledge, on, probe, provision

pytestmark = pytest.mark.lab

GATED_APP = REPO / "tests" / "apps" / "gated"


def _flwr_on(host: inventory.Host, args: str, superlink: str, timeout: int = 90) -> tuple[int, str]:
    """The flwr CLI on ``host``, as anyone there could run it, with the fleet's CA."""
    v = host.vars
    home = f"/tmp/flwr-{uuid.uuid4().hex}"
    config = (
        f'[superlink]\\ndefault = "probe"\\n[superlink.probe]\\naddress = "{superlink}"\\n'
        f'root-certificates = "{v["_common_ca_cert"]}"\\n'
    )
    command = (
        f"mkdir -p {home} && printf '{config}' > {home}/config.toml && "
        f"sudo FLWR_HOME={home} FLWR_DISABLE_UPDATE_CHECK=1 timeout {timeout} "
        f"{v['_common_venv']}/bin/flwr {args} 2>&1; status=$?; rm -rf {home}; exit $status"
    )
    return probe(host, command, timeout=timeout + 30)


def _fleet_address(fleet: inventory.Inventory) -> str:
    return f"{fleet.fleet_host}:{fleet.superlink_port}"


def _online(fleet: inventory.Inventory) -> dict[str, str]:
    """Host by node ID of the nodes the SuperLink lists online."""
    result = fledge("round", "nodes", "-i", fleet.path, "--format", "json", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    nodes = json.loads(result.stdout)["nodes"]
    return {n["node_id"]: n["host"] for n in nodes if n["status"] == "online"}


def _join(fleet: inventory.Inventory, host: inventory.Host, make_key: str) -> tuple[int, str]:
    """A SuperNode started by hand on ``host`` (as root, with the fleet's CA) with the key
    that the shell command ``make_key`` writes to $KEY: its exit code and output."""
    v = host.vars
    key = f"/tmp/probe-{uuid.uuid4().hex}"
    _, out = probe(
        host,
        # The SuperNode starts flower-superexec by name: the venv's bin comes first.
        f"KEY={key}; umask 077; {make_key} && sudo env PATH={v['_common_venv']}/bin:$PATH "
        f"timeout 90 flower-supernode --superlink {_fleet_address(fleet)} "
        f"--root-certificates {v['_common_ca_cert']} --auth-supernode-private-key {key} "
        f"--port 19094 --max-retries 0 2>&1; echo exit=$?; rm -f {key} {key}.pub",
        timeout=150,
    )
    # Its flower-superexec may write a few more lines before it sees its parent gone.
    return int(re.findall(r"^exit=(\d+)$", out, re.MULTILINE)[-1]), out


def _wait_online(fleet: inventory.Inventory, hosts: set[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while set(_online(fleet).values()) < hosts:
        assert time.monotonic() < deadline, f"{hosts} not all online within {timeout} s"
        time.sleep(5)


# --- the control plane -------------------------------------------------------


def test_a_device_reaches_the_fleet_api_and_health_only(fleet: inventory.Inventory) -> None:
    pi1 = fleet.supernodes[0]
    ca = pi1.vars["_common_ca_cert"]
    base = f"https://{_fleet_address(fleet)}"
    # As root on the device: the CA certificate is the service account's to read.
    request = f"sudo python3 -c {shlex.quote(_REQUEST)} {{url}} {shlex.quote(ca)}"
    assert probe(pi1, request.format(url=f"{base}/health"))[1].startswith("200")
    for path in ("/v1/control/list-runs", "/v1/runtime/pull-app-inputs", "/docs"):
        _, out = probe(pi1, request.format(url=base + path))
        assert out.startswith("403"), (path, out)
    # The Fleet API goes through to the SuperLink, which answers for itself.
    assert not probe(pi1, request.format(url=f"{base}/v1/fleet/pull-messages"))[1].startswith("403")


# A request to a URL, the CA given: GET /health, POST anything else. Prints
# the HTTP status and reason.
_REQUEST = (
    "import ssl, sys, urllib.error, urllib.request\n"
    "context = ssl.create_default_context(cafile=sys.argv[2])\n"
    "request = urllib.request.Request(sys.argv[1], data=b'', method='POST' if "
    "'/health' not in sys.argv[1] else 'GET')\n"
    "try:\n"
    "    answer = urllib.request.urlopen(request, context=context, timeout=30)\n"
    "    print(answer.status, answer.reason)\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code, e.reason)\n"
)


def test_flwr_from_a_device_is_refused(fleet: inventory.Inventory) -> None:
    """`flwr ls` and `flwr run` as anyone on a device could run them, with the fleet's CA."""
    pi1 = fleet.supernodes[0]
    _, out = _flwr_on(pi1, "ls probe --format json", _fleet_address(fleet))
    answer = last_json_object(out)
    assert answer is not None and answer["success"] is False, out[-2000:]
    on(pi1, "rm -rf /tmp/fledge-gated && mkdir -p /tmp/fledge-gated")
    for path in GATED_APP.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = f"/tmp/fledge-gated/{path.relative_to(GATED_APP)}"
            content = shlex.quote(path.read_text())
            on(pi1, f"mkdir -p $(dirname {target}) && printf '%s' {content} > {target}")
    _, out = _flwr_on(pi1, "run /tmp/fledge-gated probe --format json", _fleet_address(fleet))
    answer = last_json_object(out)
    assert answer is not None and answer["success"] is False and "run-id" not in answer, out[-2000:]


def test_the_operator_reaches_the_control_api_through_ssh(fleet: inventory.Inventory) -> None:
    """`fledge tunnel` holds the channel open for the plain flwr CLI."""
    tunnel = subprocess.Popen(
        [str(BIN / "fledge"), "tunnel", "-i", str(fleet.path), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tunnel.stdout is not None
        opened = json.loads(tunnel.stdout.readline())
        # TLS, trusting the fleet's CA, never "insecure".
        config = (Path(opened["flwr_home"]) / "config.toml").read_text()
        assert f'root-certificates = "{fleet.state_dir / "pki" / "ca.crt"}"' in config
        assert "insecure" not in config
        listed = subprocess.run(
            [str(BIN / "flwr"), "ls", opened["connection"], "--format", "json"],
            env={
                "FLWR_HOME": opened["flwr_home"],
                "PATH": str(BIN),
                "FLWR_DISABLE_UPDATE_CHECK": "1",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert json.loads(listed.stdout)["success"] is True, listed.stdout + listed.stderr
    finally:
        tunnel.send_signal(signal.SIGINT)
        tunnel.wait(timeout=60)
    assert tunnel.returncode == 0


# --- device identity ----------------------------------------------------------


def test_every_device_has_its_own_key_and_node(fleet: inventory.Inventory) -> None:
    online = _online(fleet)
    assert sorted(online.values()) == [d.name for d in fleet.supernodes]
    for device in fleet.supernodes:
        key = device.vars["_supernode_key"]
        assert on(device, f"sudo stat -c '%U %a' {key}") == f"{device.vars['fledge_user']} 600"
        # The private key never left the device: the controller holds the public key only.
        record = json.loads((fleet.state_dir / "nodes" / f"{device.name}.json").read_text())
        assert record["public_key"] == on(device, f"sudo cat {key}.pub")
        assert "PRIVATE" not in (fleet.state_dir / "nodes" / f"{device.name}.json").read_text()


def test_a_rogue_supernode_with_the_fleet_ca_is_refused(fleet: inventory.Inventory) -> None:
    before = set(_online(fleet))
    code, out = _join(fleet, fleet.supernodes[0], "ssh-keygen -q -t ecdsa -b 384 -N '' -f $KEY")
    assert code not in (0, 124), out[-3000:]  # refused, not left running until timeout
    assert set(_online(fleet)) == before


@pytest.mark.timeout(2400)
def test_a_revoked_device_stays_out_until_enrolled_again(fleet: inventory.Inventory) -> None:
    pi2 = fleet.supernodes[1]
    key = pi2.vars["_supernode_key"]
    stolen = on(pi2, f"sudo cat {key}")  # as a thief with the device would have it
    old_id = next(i for i, h in _online(fleet).items() if h == pi2.name)

    revoked = fledge("node", "revoke", pi2.name, "-i", fleet.path)
    assert revoked.returncode == 0, revoked.stderr[-3000:]
    assert probe(pi2, f"sudo test -e {key}")[0] != 0
    assert on(pi2, "systemctl is-enabled fledge-supernode || true") == "disabled"
    assert json.loads((fleet.state_dir / "nodes" / f"{pi2.name}.json").read_text())["revoked_at"]

    # The stolen key is refused by the SuperLink.
    code, out = _join(fleet, pi2, f"printf '%s\\n' {shlex.quote(stolen)} > $KEY")
    assert code not in (0, 124), out[-3000:]
    assert old_id not in _online(fleet)

    # Provisioning says so and leaves it out; --enrol brings it back with a new key.
    refused = fledge("provision", "-i", fleet.path, "--limit", pi2.name)
    assert refused.returncode == 1
    assert "was revoked" in refused.stderr and "--enrol pi-2" in " ".join(refused.stderr.split())
    again = provision(fleet.path, "--limit", pi2.name, "--enrol", pi2.name)
    assert again["succeeded"]
    assert on(pi2, f"sudo cat {key}") != stolen
    _wait_online(fleet, {pi2.name})
    new_id = next(i for i, h in _online(fleet).items() if h == pi2.name)
    assert new_id != old_id

    # It trains again, beside the other device.
    result = fledge("round", "start", "-i", fleet.path, "--rounds", 1, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout)["rounds"][-1]["nodes"] == 2


# --- certificates --------------------------------------------------------------


def test_certs_status_sees_what_the_coordinator_serves(fleet: inventory.Inventory) -> None:
    result = fledge("certs", "status", "-i", fleet.path, "--format", "json", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["superlink"]["on_coordinator"] == doc["superlink"]["sha256"]


@pytest.mark.slow  # waits for a training run, then for every device: the longer test command
@pytest.mark.timeout(2400)
def test_rotation_waits_for_training_then_devices_come_back(fleet: inventory.Inventory) -> None:
    before = json.loads(fledge("certs", "status", "-i", fleet.path, "--format", "json").stdout)
    gate = f"gate-{uuid.uuid4().hex}"
    data_dir = fleet.supernodes[0].vars["fledge_data_dir"]
    training = subprocess.Popen(
        [str(BIN / "fledge"), "round", "start", "-i", str(fleet.path), "--app", str(GATED_APP),
         "--config", f"gate='{gate}'", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while (
            '"running"' not in fledge("round", "list", "-i", fleet.path, "--format", "json").stdout
        ):
            assert time.monotonic() < deadline, "the gated run never ran"
            time.sleep(3)
        refused = fledge("certs", "rotate", "-i", fleet.path)
        assert refused.returncode == 1
        assert "Runs in progress" in " ".join(refused.stderr.split())
    finally:
        for device in fleet.supernodes:
            probe(device, f"sudo touch {data_dir}/{gate}")
        out, err = training.communicate(timeout=900)
        for device in fleet.supernodes:
            probe(device, f"sudo rm -f {data_dir}/{gate}")
    assert json.loads(out)["status"] == "finished:completed", err[-3000:]
    rotated = fledge("certs", "rotate", "-i", fleet.path)
    assert rotated.returncode == 0, rotated.stderr[-4000:]
    after = json.loads(fledge("certs", "status", "-i", fleet.path, "--format", "json").stdout)
    assert after["superlink"]["sha256"] != before["superlink"]["sha256"]
    assert after["superlink"]["on_coordinator"] == after["superlink"]["sha256"]
    _wait_online(fleet, {d.name for d in fleet.supernodes})
    result = fledge("round", "start", "-i", fleet.path, "--rounds", 1, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
