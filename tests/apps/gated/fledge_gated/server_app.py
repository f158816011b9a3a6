"""ServerApp: FedAvg over min-nodes devices, on a four-number model."""

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    nodes = int(str(config["min-nodes"]))
    strategy = FedAvg(min_train_nodes=nodes, min_evaluate_nodes=nodes, min_available_nodes=nodes)
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord([np.zeros(4, dtype=np.float32)]),
        num_rounds=int(str(config["num-server-rounds"])),
        timeout=float(str(config["round-timeout"])),
        train_config=ConfigRecord(),
    )
