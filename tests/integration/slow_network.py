"""A slow, lossy network on one lab device, without tc netem.

The lab's kernel has no netem (``tc qdisc ... netem`` answers "Specified
qdisc kind is unknown"), so the device's network is slowed from inside its
container with what the kernel has: iptables sends every TCP connection of
the device, the ones it opens and the SSH connections it accepts, through a
relay that holds each chunk of data back before passing it on (latency),
and iptables' statistic match drops a share of the packets that reach the
device (loss, which TCP must recover from by retransmitting).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

RELAY_PORT = 15001
# What the relay writes for each connection it carries: proof that it was in the path.
RELAY_LOG = "/var/tmp/fledge-slow-network.log"
RELAY_USER = "nobody"  # its own connections must not be sent back to it

# Run as `python3 -c RELAY PORT ONE_WAY_DELAY LOG`; the kernel tells it, for
# each connection iptables redirected, where that connection was going.
RELAY = r'''
import asyncio, socket, struct, sys, time

PORT, DELAY, LOG = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
SO_ORIGINAL_DST = 80


def original_destination(sock):
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    return socket.inet_ntoa(raw[4:8]), struct.unpack_from("!H", raw, 2)[0]


async def pipe(reader, writer):
    """Copy one direction, each chunk DELAY seconds after it arrived."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + DELAY, data))
    finally:
        queue.put_nowait((time.monotonic() + DELAY, b""))
    await sender


async def carry(reader, writer):
    host, port = original_destination(writer.get_extra_info("socket"))
    with open(LOG, "a") as log:
        log.write(f"{host}:{port}\n")
    await asyncio.sleep(2 * DELAY)  # the handshake's round trip
    try:
        far_reader, far_writer = await asyncio.open_connection(host, port)
    except OSError:
        writer.close()
        return
    directions = [asyncio.create_task(pipe(reader, far_writer)),
                  asyncio.create_task(pipe(far_reader, writer))]
    done, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_EXCEPTION)
    if any(task.exception() for task in done):  # one side broke: the other ends too
        for task in pending:
            task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for each in (writer, far_writer):
        each.close()


async def main():
    server = await asyncio.start_server(carry, "0.0.0.0", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
'''


def rules(loss: float) -> list[tuple[str, str, list[str]]]:
    """iptables rules as (table, chain, match and target): the device's TCP through
    the relay, and loss."""
    redirect = ["-j", "REDIRECT", "--to-ports", str(RELAY_PORT)]
    return [
        ("nat", "OUTPUT", ["-o", "eth0", "-p", "tcp",
                           "-m", "owner", "!", "--uid-owner", RELAY_USER, *redirect]),
        ("nat", "PREROUTING", ["-i", "eth0", "-p", "tcp", "--dport", "22", *redirect]),
        ("filter", "INPUT", ["-i", "eth0", "-m", "statistic", "--mode", "random",
                             "--probability", str(loss), "-j", "DROP"]),
    ]  # fmt: skip


@contextmanager
def slow_network(container: Any, *, latency_ms: int, loss: float) -> Iterator[None]:
    """``latency_ms`` more on every round trip and ``loss`` of the packets that reach the
    device, while the block runs. Connections open before it keep their path (the
    caller restarts what must reconnect); new ones, SSH included, go through the relay."""

    def root(*command: str) -> None:
        code, output = container.exec_run(["timeout", "60", *command])
        assert code == 0, f"{command}: {output.decode(errors='replace')[-2000:]}"

    delay = latency_ms / 2000  # seconds, each way
    container.exec_run(
        ["python3", "-c", RELAY, str(RELAY_PORT), str(delay), RELAY_LOG],
        user=RELAY_USER, detach=True,
    )  # fmt: skip
    root("sh", "-c", f"for i in $(seq 50); do ss -ltn | grep -q ':{RELAY_PORT} ' && exit 0; "
         "sleep 0.1; done; exit 1")  # fmt: skip
    added = []
    try:
        for table, chain, rule in rules(loss):
            root("iptables", "-t", table, "-A", chain, *rule)
            added.append((table, chain, rule))
        yield
    finally:
        for table, chain, rule in reversed(added):
            root("iptables", "-t", table, "-D", chain, *rule)
        container.exec_run(["pkill", "-f", f"{RELAY_PORT} {delay} {RELAY_LOG}"])
        container.exec_run(["rm", "-f", RELAY_LOG])


def carried(container: Any) -> list[str]:
    """The destinations of the connections the relay carried."""
    code, output = container.exec_run(["cat", RELAY_LOG])
    return output.decode().split() if code == 0 else []
