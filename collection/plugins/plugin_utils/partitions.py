# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Data partitions for the default app, prepared on the controller.

The handwritten digits bundled with scikit-learn (1,797 8x8 images, so it
works offline) are split once into a held-out test set and a training set,
both stratified, then dealt out evenly to the devices. Each device receives
one ``.npz`` file with its own training and test share; the union of the
test shares is the whole test set, so the fleet's sample-weighted accuracy
is the global model's accuracy on held-out data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError
from ansible_collections.fledge.edge.plugins.plugin_utils.files import atomic_write

# Must match fledge_digits.task.PARTITION_FILE in the default app.
PARTITION_FILE = "digits-partition.npz"
TEST_FRACTION = 0.25


@dataclass(frozen=True)
class PartitionResult:
    paths: dict[str, Path]
    changed: list[str]


def digits_partitions(num_partitions: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Split the digits into ``num_partitions`` IID shares (deterministic for a seed)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if num_partitions < 1:
        raise FledgeError("there are no devices to give data to", field="supernodes")
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed
    )
    rng = np.random.default_rng(seed)
    train_parts = np.array_split(rng.permutation(len(y_train)), num_partitions)
    test_parts = np.array_split(rng.permutation(len(y_test)), num_partitions)
    return [
        {
            "x_train": x_train[tr],
            "y_train": y_train[tr],
            "x_test": x_test[te],
            "y_test": y_test[te],
        }
        for tr, te in zip(train_parts, test_parts, strict=True)
    ]


def _same_arrays(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    try:
        with np.load(path) as old:
            return set(old.files) == set(arrays) and all(
                np.array_equal(old[k], v) for k, v in arrays.items()
            )
    except (OSError, ValueError):
        return False


def write_partitions(
    out_dir: Path, hosts: Sequence[str], seed: int = 0, *, dry_run: bool = False
) -> PartitionResult:
    """Write ``out_dir/<host>/digits-partition.npz`` for each host, in order.

    Files whose content would not change are left alone (np.savez stamps the
    time into the archive, so rewriting would look like a change to Ansible).
    """
    parts = digits_partitions(len(hosts), seed)
    paths, changed = {}, []
    for host, arrays in zip(hosts, parts, strict=True):
        path = Path(out_dir) / host / PARTITION_FILE
        paths[host] = path
        if _same_arrays(path, arrays):
            continue
        changed.append(host)
        if not dry_run:
            buffer = io.BytesIO()
            # Arrays only: a partition never needs pickled objects to load.
            np.savez_compressed(buffer, allow_pickle=False, **arrays)
            atomic_write(path, buffer.getvalue(), 0o600)
    return PartitionResult(paths, changed)
