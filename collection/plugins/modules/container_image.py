# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name, on the controller.

DOCUMENTATION = r"""
---
module: container_image
short_description: Build the Flower SuperNode container image on the controller, saved as an archive
description:
  - Builds, with the controller's Docker engine, an image that runs C(flower-supernode) as an
    unprivileged user, on the Debian-family O(base_image), with Flower installed from the
    wheelhouse archive O(wheelhouse) (see M(fledge.edge.wheelhouse)); neither the build nor the
    devices reach the package index. The build itself installs C(python3-venv) with apt from the
    base image's Debian mirror.
  - Saves the image with C(docker save) into a gzip-compressed archive under O(dest), named after
    a digest of the recipe (the Dockerfile, O(base_image) as named, O(arch), the wheelhouse
    archive's name, O(uid)). An archive that exists is never rebuilt, and then no Docker engine is
    needed. A base image named by a moving tag is not re-read; pin it by digest, or rename it, to
    rebuild.
  - Checks that O(base_image) holds a userland of O(arch) by running its C(dpkg); pulls it for
    C(linux/ARCH) when it does not (or is missing). Building for another architecture than the
    controller's runs the build under QEMU (the C(qemu-aarch64) binfmt handler with the F flag).
  - Writes O(arch) into the saved image's config (and rewrites the manifest to the config's new
    digest), so that C(docker image inspect) on the device reports the right architecture even when
    the base image was labelled wrongly (C(docker import) labels every image amd64).
  - Runs on the controller for each host it is called for; hosts that share a recipe wait for its
    one build.
version_added: 0.1.0
author: fledge maintainers
options:
  dest:
    description: Directory on the controller for the image archives.
    type: path
    required: true
  base_image:
    description: The Debian-family image to build on, e.g. C(debian:bookworm-slim); its Python
      must be the one the wheelhouse was made for.
    type: str
    required: true
  arch:
    description: The device's architecture, as dpkg names it.
    type: str
    required: true
    choices: [amd64, arm64]
  wheelhouse:
    description: The wheelhouse archive on the controller, made by M(fledge.edge.wheelhouse) for
      this architecture (its C(requirements.txt) lists what to install).
    type: path
    required: true
  repository:
    description: The image's repository name; the tag is C(ARCH-DIGEST).
    type: str
    default: fledge-supernode
  uid:
    description: The image's default user and group ID (an unprivileged one; the unit overrides it
      with the device's service account).
    type: int
    default: 49999
extends_documentation_fragment:
  - fledge.edge.controller
requirements:
  - A Docker engine and the C(docker) command on the controller, when the archive must be built.
"""

EXAMPLES = r"""
- name: Build the SuperNode image on the controller
  fledge.edge.container_image:
    dest: "{{ inventory_dir }}/.fledge/images"
    base_image: debian:bookworm-slim
    arch: arm64
    wheelhouse: "{{ wheelhouse.archives[inventory_hostname] }}"
  register: image
"""

RETURN = r"""
image:
  description: The image's name and tag, as C(docker load) will create it on the device.
  returned: always
  type: str
  sample: fledge-supernode:arm64-3f2a1b4c5d6e
archive:
  description: The archive on the controller (it exists unless this was a check-mode run).
  returned: always
  type: str
  sample: /home/op/fleet/.fledge/images/fledge-supernode-arm64-3f2a1b4c5d6e.tar.gz
digest:
  description: The SHA-256 of the recipe.
  returned: always
  type: str
built:
  description: Whether this task built the image (it may have been built for another host).
  returned: always
  type: bool
build_seconds:
  description: Seconds spent checking the base image and building.
  returned: when built
  type: float
save_seconds:
  description: Seconds spent saving, relabelling and compressing the archive.
  returned: when built
  type: float
relabelled:
  description: Whether the saved image's config had to get the right architecture.
  returned: when built
  type: bool
image_id:
  description: The image ID the device will see after C(docker load).
  returned: when built
  type: str
"""
