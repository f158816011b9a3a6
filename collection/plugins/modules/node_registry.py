# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name, on the controller.

DOCUMENTATION = r"""
---
module: node_registry
short_description: The controller's record of which device is which SuperLink node
description:
  - Each device of the fleet makes its own key pair; the controller registers the public key
    with the SuperLink, which answers with a node ID. This module keeps, on the controller, one
    private record per device under O(state_dir)C(/nodes/), with its public key, its node ID,
    when it was registered and, once revoked, when that was (earlier enrolments are kept in its
    history).
  - O(state=query) only reads; O(state=registered) records a registration; O(state=revoked) marks
    the device revoked (provisioning then enrols it again only when asked).
version_added: 0.2.0
author: fledge maintainers
options:
  state_dir:
    description: The fleet's state directory on the controller (C(fledge_state_dir)).
    type: path
    required: true
  host:
    description: The device's inventory name.
    type: str
    required: true
  state:
    description: What to do with the record.
    type: str
    choices: [query, registered, revoked]
    default: query
  public_key:
    description: The device's public key, as C(ssh-keygen) writes it (for O(state=registered)).
    type: str
  node_id:
    description: The node ID the SuperLink gave that key (for O(state=registered)).
    type: str
extends_documentation_fragment:
  - fledge.edge.controller
"""

EXAMPLES = r"""
- name: Look up this device's enrolment
  fledge.edge.node_registry:
    state_dir: "{{ fledge_state_dir }}"
    host: "{{ inventory_hostname }}"
  register: enrolment

- name: Record a registration
  fledge.edge.node_registry:
    state_dir: "{{ fledge_state_dir }}"
    host: "{{ inventory_hostname }}"
    state: registered
    public_key: "{{ public_key }}"
    node_id: "{{ node_id }}"
"""

RETURN = r"""
enrolment:
  description: The record after the task (null when there is none).
  returned: always
  type: dict
  sample: {host: pi-1, public_key: ecdsa-sha2-nistp384 AAAA..., node_id: "5286547612981045",
           registered_at: "2026-12-02T12:00:00Z", revoked_at: null, history: []}
previous:
  description: The record before the task (null when there was none).
  returned: always
  type: dict
"""
