# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name, on the controller.

DOCUMENTATION = r"""
---
module: data_partitions
short_description: Split the default app's data set into one partition per device, on the controller
description:
  - Splits the handwritten digits bundled with scikit-learn into a held-out test set and a
    training set (stratified), then deals both out evenly to O(hosts), in order, writing
    C(<dest>/<host>/digits-partition.npz).
  - Deterministic for a given O(seed) and host list; files whose content would not change are
    left alone.
  - Runs on the controller only and needs the C(fledge) Python package there.
version_added: 0.1.0
author: fledge maintainers
options:
  dest:
    description: Controller directory for the partitions.
    type: path
    required: true
  hosts:
    description: The devices, in partition order (usually C(groups['supernodes'])).
    type: list
    elements: str
    required: true
  seed:
    description: Seed of the split.
    type: int
    default: 0
extends_documentation_fragment:
  - fledge.edge.controller
"""

EXAMPLES = r"""
- name: Prepare one partition per device
  fledge.edge.data_partitions:
    dest: "{{ inventory_dir }}/.fledge/data"
    hosts: "{{ groups['supernodes'] }}"
  run_once: true
"""

RETURN = r"""
partitions:
  description: The partition file of each host, on the controller.
  returned: always
  type: dict
hosts_changed:
  description: Hosts whose partition was (or would be) written.
  returned: always
  type: list
  elements: str
"""
