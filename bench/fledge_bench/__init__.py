"""fledge's benchmark suite: one command, ``bench/run``.

It builds what it measures (lab fleets of containers that behave like
Raspberry Pis, a plain local Flower on loopback), measures, prints a table
and writes docs/benchmarks.md with a chart. The modules, from the bottom up:

- ``model``: a result is a :class:`~fledge_bench.model.Row`; ratios and medians;
- ``measure``: every process the suite starts, with a time limit, its wall
  time and the CPU time of its whole tree;
- ``machine``: what the figures were measured on;
- ``probes``: what is read on a lab host (apt's downloads, memory per systemd
  unit, disk), as commands and parsers of their output;
- ``lab``: the suite's lab fleets, labelled, always removed at the end;
- ``floor``: a plain local SuperLink and SuperNodes, no fledge, for the rounds' floor;
- ``sections``: one module per section of the table, each returning rows;
- ``suite``: which fleets the selected sections need, and running them;
- ``report`` and ``chart``: the table, docs/benchmarks.md and its PNG;
- ``cli``: the options and the entry point.
"""
