"""ClientApp: trains and evaluates on the partition that fledge placed on the device."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fledge_digits.task import evaluate, load_partition, scalar, train

app = ClientApp()


def _partition(context: Context) -> dict:
    # fledge's supernode role sets data-path in the node config of each device.
    return load_partition(str(context.node_config["data-path"]))


@app.train()
def fit(msg: Message, context: Context) -> Message:
    data = _partition(context)
    params = msg.content.array_records["arrays"].to_numpy_ndarrays()
    server_round = int(scalar(msg.content.config_records["config"]["server-round"]))
    new_params, loss = train(
        params,
        data["x_train"],
        data["y_train"],
        epochs=int(context.run_config["local-epochs"]),
        learning_rate=float(context.run_config["learning-rate"]),
        batch_size=int(context.run_config["batch-size"]),
        seed=int(context.run_config["seed"]) + server_round,
    )
    metrics = MetricRecord({"train_loss": loss, "num-examples": len(data["y_train"])})
    content = RecordDict({"arrays": ArrayRecord(new_params), "metrics": metrics})
    return Message(content=content, reply_to=msg)


@app.evaluate()
def check(msg: Message, context: Context) -> Message:
    data = _partition(context)
    params = msg.content.array_records["arrays"].to_numpy_ndarrays()
    loss, accuracy = evaluate(params, data["x_test"], data["y_test"])
    metrics = MetricRecord(
        {"loss": loss, "accuracy": accuracy, "num-examples": len(data["y_test"])}
    )
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
