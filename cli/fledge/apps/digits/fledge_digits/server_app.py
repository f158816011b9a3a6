"""ServerApp: FedAvg over the fleet, reporting each round as one JSON log line.

`fledge round start` follows the run's log and reads the lines that start
with ``fledge-round``; everything else in the log is Flower's own.
"""

import json
from logging import INFO

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fledge_digits.task import initial_parameters, scalar

METRICS_PREFIX = "fledge-round"

app = ServerApp()


class ReportingFedAvg(FedAvg):
    """FedAvg that logs train loss and evaluation metrics once per round."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._train_loss: dict[int, float] = {}

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        if metrics is not None and "train_loss" in metrics:
            self._train_loss[server_round] = scalar(metrics["train_loss"])
        return arrays, metrics

    def aggregate_evaluate(self, server_round, replies):
        replies = list(replies)
        metrics = super().aggregate_evaluate(server_round, replies)
        report = {
            "round": server_round,
            "nodes": sum(1 for reply in replies if not reply.has_error()),
            "train_loss": self._train_loss.get(server_round),
            "loss": scalar(metrics["loss"]) if metrics else None,
            "accuracy": scalar(metrics["accuracy"]) if metrics else None,
        }
        log(INFO, "%s %s", METRICS_PREFIX, json.dumps(report))
        return metrics


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    min_nodes = int(config["min-nodes"])
    strategy = ReportingFedAvg(
        min_train_nodes=min_nodes,
        min_evaluate_nodes=min_nodes,
        min_available_nodes=min_nodes,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(initial_parameters(int(config["seed"]))),
        num_rounds=int(config["num-server-rounds"]),
        timeout=float(config["round-timeout"]),
        train_config=ConfigRecord(),
    )
