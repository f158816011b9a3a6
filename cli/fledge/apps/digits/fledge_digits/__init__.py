"""fledge's default Flower app: federated softmax regression on handwritten digits."""
