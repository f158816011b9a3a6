"""fledge: federated learning on fleets of edge Linux devices."""

__version__ = "0.1.0"
