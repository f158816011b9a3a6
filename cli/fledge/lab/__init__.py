"""The lab: a local fleet of Docker containers that behave like Raspberry Pi OS hosts.

- ``engine``: reaching the Docker engine;
- ``image``: the Pi-like base image, built locally and cached by recipe hash;
- ``fleet``: the containers and network (``up``, ``hosts``, ``down``);
- ``node``: what is done inside a container over the Docker exec API;
- ``files``: the login key, known_hosts and inventory left for the controller;
- ``report``: how they report progress (to a reporter they are given; they never print).

docs/lab.md explains how it works and why.
"""
