"""ClientApp: train waits until the gate file exists, then replies with the arrays it got."""

import time
from pathlib import Path

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    gate = Path(str(context.node_config["data-path"])) / str(context.run_config["gate"])
    deadline = time.monotonic() + float(str(context.run_config["gate-timeout"]))
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(1)
    content = RecordDict(
        {
            "arrays": msg.content.array_records["arrays"],
            "metrics": MetricRecord({"num-examples": 1, "gate_open": int(gate.exists())}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    metrics = MetricRecord({"num-examples": 1, "loss": 0.0, "accuracy": 1.0})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
