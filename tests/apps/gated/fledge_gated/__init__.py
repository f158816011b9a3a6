"""A Flower app for tests: training waits at a gate the test opens."""
