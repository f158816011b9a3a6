# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name, on the controller.

DOCUMENTATION = r"""
---
module: wheelhouse
short_description: Build Python wheelhouse archives on the controller, one per target platform
description:
  - Downloads, on the controller, the wheels that the given hosts need for O(requirements),
    with C(pip download) and explicit platform tags, and packs them into one tar archive per
    platform (architecture, Python version, glibc version) under O(dest).
  - Reads each host's platform from its C(fledge_platform) fact, which M(fledge.edge.base) sets.
  - An existing archive is never rebuilt; its name is a digest of requirements and platform.
  - Runs on the controller only; use it with C(run_once).
version_added: 0.1.0
author: fledge maintainers
options:
  dest:
    description: Directory on the controller for the archives.
    type: path
    required: true
  requirements:
    description: Requirement specifiers, e.g. C(flwr==1.42.0).
    type: list
    elements: str
    required: true
  hosts:
    description: The hosts to build for, usually C(ansible_play_hosts).
    type: list
    elements: str
    required: true
  pip_args:
    description: Extra arguments for C(pip download), such as C(--index-url URL).
    type: list
    elements: str
    default: []
  state_dir:
    description:
      - The fleet's state directory on the controller. When given, the packages (and
        versions) of each host's archive are recorded in its C(packages.json), which
        C(fledge round start) checks an app's dependencies against.
      - Not written in check mode.
    type: path
extends_documentation_fragment:
  - fledge.edge.controller
"""

EXAMPLES = r"""
- name: Build the wheelhouse on the controller, once per platform
  fledge.edge.wheelhouse:
    dest: "{{ inventory_dir }}/.fledge/wheelhouse"
    requirements: [flwr==1.42.0]
    hosts: "{{ ansible_play_hosts }}"
  run_once: true
  register: wheelhouse
"""

RETURN = r"""
archives:
  description: The archive each host needs, by host name.
  returned: always
  type: dict
  sample: {pi-1: /home/op/fleet/.fledge/wheelhouse/aarch64-py3.11-glibc2.36-1f2e3d4c5b6a.tar}
built:
  description: Names of the archives built by this run (would be built, in check mode).
  returned: always
  type: list
  elements: str
"""
