"""ClientApp: reads readings.csv from its data-path and notes what it read in seen.txt."""

from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from tabulate import tabulate

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    readings = Path(str(context.node_config["data-path"])) / "readings.csv"
    values = [float(line) for line in readings.read_text().split()] if readings.is_file() else []
    # The working directory is the run's own on the device (fledge's hook).
    Path("seen.txt").write_text(tabulate([[len(values), sum(values)]], headers=["rows", "sum"]))
    mean = np.mean(values) if values else 0.0
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.array([mean], dtype=np.float64)]),
            "metrics": MetricRecord({"num-examples": max(len(values), 1), "rows": len(values)}),
        }
    )
    return Message(content=content, reply_to=msg)
