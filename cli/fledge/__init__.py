"""fledge: federated learning on fleets of edge Linux devices."""

__version__ = "0.1.0"
# Every host runs exactly this Flower release (the controller included).
FLWR_VERSION = "1.42.0"
