# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name, on the controller.

DOCUMENTATION = r"""
---
module: server_certificate
short_description: Issue the SuperLink's TLS certificate from the fleet CA, on the controller
description:
  - Makes sure O(pki_dir) holds a CA (C(ca.crt), C(ca.key)) and a server certificate
    C(superlink.crt) with its key C(superlink.key) for the SuperLink, creating the CA when
    there is none. The files are named by role, not by host, so that no host name (C(ca),
    say) can overwrite the CA's; a fleet has one SuperLink.
  - The certificate carries every name and address the SuperLink is reached by, plus
    C(IP:127.0.0.1) and C(DNS:localhost), which Flower's own SuperExec uses.
  - It is reissued when missing or unreadable, when its names change, when it was not
    issued by the current CA, or within 30 days of expiry; otherwise nothing changes.
  - Fails, without writing anything, when an extra name is neither a DNS name nor an IP
    address, or when the CA's files cannot be read.
  - Runs on the controller only and needs the C(fledge) Python package there. The CA key
    never leaves the controller.
version_added: 0.1.0
author: fledge maintainers
options:
  pki_dir:
    description: The controller directory with the CA (created 0700).
    type: path
    required: true
  name:
    description: The SuperLink's inventory name, the certificate's common name and one of its names.
    type: str
    required: true
  address:
    description: The address the controller uses for SSH (C(ansible_host)).
    type: str
    required: true
  fleet_host:
    description: The name or address devices dial.
    type: str
    required: true
  listen_address:
    description: The address the SuperLink listens on; wildcards are not added.
    type: str
  extra_sans:
    description: More DNS names (C(*.example.lan) too) or IP addresses for the certificate.
    type: list
    elements: str
    default: []
  rotate:
    description: Issue a new certificate, with a new key, even when the current one is fine.
    type: bool
    default: false
extends_documentation_fragment:
  - fledge.edge.controller
"""

EXAMPLES = r"""
- name: Issue the SuperLink's certificate on the controller
  fledge.edge.server_certificate:
    pki_dir: "{{ inventory_dir }}/.fledge/pki"
    name: "{{ inventory_hostname }}"
    address: "{{ ansible_host }}"
    fleet_host: coordinator.lan
  register: certificate
"""

RETURN = r"""
cert:
  description: Path of the server certificate on the controller.
  returned: always
  type: str
key:
  description: Path of the server's private key on the controller (0600).
  returned: always
  type: str
ca_cert:
  description: Path of the CA certificate on the controller.
  returned: always
  type: str
sans:
  description: The subject alternative names the certificate carries.
  returned: always
  type: list
  elements: str
reasons:
  description: Why the certificate was (or, in check mode, would be) issued; empty if not.
  returned: always
  type: list
  elements: str
"""
