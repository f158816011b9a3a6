"""What flwr reports: runs, nodes, and the metrics of a round."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

COMPLETED = "finished:completed"
FINISHED = "finished"


@dataclass(frozen=True)
class RoundMetrics:
    """One federated round as the ServerApp logged it; None where not reported."""

    round: int
    nodes: int | None = None
    train_loss: float | None = None
    loss: float | None = None
    accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunInfo:
    """One run on the SuperLink, from ``flwr ls``."""

    run_id: str
    status: str
    status_details: str | None
    app: str
    elapsed_seconds: float
    inbound_bytes: int
    outbound_bytes: int
    pending_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status.startswith(FINISHED)

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def network_bytes(self) -> dict[str, int]:
        return {
            "inbound": self.inbound_bytes,
            "outbound": self.outbound_bytes,
            "total": self.inbound_bytes + self.outbound_bytes,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunInfo:
        traffic = doc["network-traffic"]
        return cls(
            run_id=str(doc["run-id"]),
            status=str(doc["status"]),
            status_details=_known(doc.get("status-details")),
            app=f"{doc['fab-id']}=={doc['fab-version']}",
            elapsed_seconds=float(doc["elapsed"]),
            inbound_bytes=int(traffic["inbound-bytes"]),
            outbound_bytes=int(traffic["outbound-bytes"]),
            pending_at=_known(doc.get("pending-at")),
            finished_at=_known(doc.get("finished-at")),
        )

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> RunInfo:
        """The inverse of :meth:`to_json`."""
        traffic = doc["network_bytes"]
        return cls(
            run_id=str(doc["run_id"]),
            status=str(doc["status"]),
            status_details=doc.get("status_details"),
            app=str(doc["app"]),
            elapsed_seconds=float(doc["elapsed_seconds"]),
            inbound_bytes=int(traffic["inbound"]),
            outbound_bytes=int(traffic["outbound"]),
            pending_at=doc.get("pending_at"),
            finished_at=doc.get("finished_at"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "status_details": self.status_details,
            "app": self.app,
            "elapsed_seconds": self.elapsed_seconds,
            "network_bytes": self.network_bytes,
            "pending_at": self.pending_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class Node:
    """A SuperNode the SuperLink knows, from ``flwr supernode ls``."""

    node_id: str
    status: str
    online_at: str | None
    offline_at: str | None

    @property
    def online(self) -> bool:
        return self.status == "online"

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Node:
        return cls(
            node_id=str(doc["node-id"]),
            status=str(doc["status"]),
            online_at=_known(doc.get("online-at")),
            offline_at=_known(doc.get("offline-at")),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _known(value: Any) -> str | None:
    """flwr writes "N/A" for values it does not have."""
    return None if value in (None, "", "N/A") else str(value)
