"""The results folder's chart: loss and accuracy per round, as a PNG.

matplotlib is imported here only, when a chart is drawn: it costs most of
a second, which no other command should pay.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from fledge.flower.records import RoundMetrics

_SERIES = {  # the metric, its label, the panel it goes on
    "train_loss": ("train loss", 0),
    "loss": ("evaluation loss", 0),
    "accuracy": ("accuracy", 1),
}


def has_data(rounds: Sequence[RoundMetrics]) -> bool:
    """True when some round reported a loss or an accuracy."""
    return any(getattr(m, metric) is not None for m in rounds for metric in _SERIES)


def metrics_png(rounds: Sequence[RoundMetrics], title: str) -> bytes:
    """A PNG of loss (left) and accuracy (right) against the round."""
    from matplotlib.figure import Figure  # slow: see the module doc
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    loss, accuracy = figure.subplots(1, 2)
    for metric, (label, panel) in _SERIES.items():
        points = [(m.round, getattr(m, metric)) for m in rounds if getattr(m, metric) is not None]
        if points:
            axes = (loss, accuracy)[panel]
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    loss.set(title="loss", xlabel="round")
    accuracy.set(title="accuracy", xlabel="round")
    accuracy.yaxis.set_major_formatter(PercentFormatter(1.0))
    for axes in (loss, accuracy):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend(loc="best")
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
