"""The seam between fledge and Flower: the `flwr` CLI, pinned to flwr 1.42.

Flower's Python client for the Control API is internal and changes between
releases; its CLI with ``--format json`` is the stable interface.

- ``cli``: the one place that starts a flwr process (unit tests replace
  exactly :func:`fledge.flower.cli.run_flwr`), and reading what it prints;
- ``records``: what flwr reports about runs and nodes;
- ``metrics``: per-round metrics from a ServerApp's log;
- ``apps``: Flower apps (fledge's default one, run configs);
- ``superlink``: a fleet's SuperLink, one flwr call per question;
- ``follow``: following a run until it ends (poll, timeout, Ctrl-C, outcome).

The CLI is never trusted for success: in JSON mode it exits 0 on errors
(``{"success": false, ...}``), so every answer is parsed and checked. A
run's outcome is read from ``flwr ls --run-id``, never from an exit code.
"""
