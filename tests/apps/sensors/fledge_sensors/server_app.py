"""ServerApp: FedAvg as in Flower's quickstart; the final model saved with np.savez."""

import numpy as np
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from tabulate import tabulate

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    nodes = int(str(config["wait-for"])) or int(str(config["min-nodes"]))
    strategy = FedAvg(fraction_evaluate=0.0, min_train_nodes=nodes, min_available_nodes=nodes)
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord([np.zeros(1, dtype=np.float64)]),
        num_rounds=int(str(config["num-server-rounds"])),
    )
    final = result.arrays.to_numpy_ndarrays()
    print(tabulate([["mean", float(final[0][0])]]))
    # As the quickstart does: into the working directory.
    np.savez("final_model", *final)
