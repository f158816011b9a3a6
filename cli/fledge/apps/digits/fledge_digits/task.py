"""The model and its training loop, in numpy only (a Pi needs nothing else).

A softmax regression over the 64 pixels of the 8x8 digits: small enough to
train in seconds on a Raspberry Pi, good enough to reach well above 90%
accuracy, which makes a broken federation easy to tell from a working one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUM_FEATURES = 64
NUM_CLASSES = 10
# The file a device's partition is stored in, under its node config data-path.
PARTITION_FILE = "digits-partition.npz"


def scalar(value: object) -> float:
    """A number from a Flower record, whose values may also be lists or strings."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def load_partition(data_path: str) -> dict[str, np.ndarray]:
    """Load this device's share: x_train, y_train, x_test, y_test."""
    with np.load(Path(data_path) / PARTITION_FILE) as data:
        return {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}


def initial_parameters(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 0.01, size=(NUM_FEATURES, NUM_CLASSES))
    return [weights.astype(np.float32), np.zeros(NUM_CLASSES, dtype=np.float32)]


def _probabilities(params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    logits = x @ params[0] + params[1]
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def evaluate(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``params`` on (x, y)."""
    probs = _probabilities(params, x)
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    accuracy = (probs.argmax(axis=1) == y).mean()
    return float(loss), float(accuracy)


def train(
    params: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
) -> tuple[list[np.ndarray], float]:
    """Mini-batch gradient descent; returns new parameters and the training loss."""
    weights, bias = (p.astype(np.float64) for p in params)
    rng = np.random.default_rng(seed)
    onehot = np.eye(NUM_CLASSES)[y]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            grad = _probabilities([weights, bias], x[batch]) - onehot[batch]
            weights -= learning_rate * x[batch].T @ grad / len(batch)
            bias -= learning_rate * grad.mean(axis=0)
    new_params = [weights.astype(np.float32), bias.astype(np.float32)]
    loss, _ = evaluate(new_params, x, y)
    return new_params, loss
