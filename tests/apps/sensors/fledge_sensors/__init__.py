"""A Flower app for tests: the federated mean of each device's own readings."""
