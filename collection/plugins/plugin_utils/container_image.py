# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The SuperNode image recipe and the architecture fix of its archive.

Pure functions, used by the ``fledge.edge.container_image`` action plugin on
the controller and tested on their own:

- :func:`dockerfile` and :func:`recipe_digest`: the image is named after a
  digest of everything that goes into it (the recipe, the base image's name,
  the architecture, the wheelhouse archive, whose own name is a digest of the
  requirements and the platform), so it is rebuilt exactly when one of them
  changes, and a controller that has the archive needs no Docker engine.
- :func:`relabel`: a ``docker save`` archive whose image config names the
  wrong architecture (an arm64 image built on an x86 controller from a base
  that ``docker import`` labelled amd64) gets the right one, with the config's
  file name, ``manifest.json`` and, in the OCI layout of Docker 25+, the
  manifest and index blobs rewritten to the new digests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from io import BytesIO

# Bump when the recipe changes in a way the template text does not show.
RECIPE_VERSION = 1
# Docker's names for the architectures fledge supports, by dpkg's names.
PLATFORMS = {"amd64": ("amd64", None), "arm64": ("arm64", "v8")}
# Where the wheelhouse archive goes in the build context.
WHEELHOUSE = "wheelhouse.tar"
# The image's own user, when nothing overrides it (the official Flower
# images use the same uid); fledge's unit runs it as the device's fledge uid.
DEFAULT_UID = 49999
VENV = "/opt/flwr"

_TEMPLATE = """\
# fledge SuperNode image: flwr from the controller's wheelhouse, no index access.
FROM {base} AS runtime
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*

# The wheels stay in this stage: the image gets the virtual environment only.
FROM runtime AS build
ADD {wheelhouse} /wheels/
RUN python3 -m venv {venv} \\
 && {venv}/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /wheels --requirement /wheels/requirements.txt \\
 && {venv}/bin/pip uninstall --yes --quiet pip \\
 && {venv}/bin/flower-supernode --help > /dev/null

FROM runtime
COPY --from=build {venv} {venv}
ENV PATH={venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    HOME=/tmp \\
    FLWR_HOME=/var/lib/flwr \\
    FLWR_DISABLE_UPDATE_CHECK=1 \\
    FLWR_TELEMETRY_ENABLED=0 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1
USER {uid}:{uid}
WORKDIR /tmp
ENTRYPOINT ["flower-supernode"]
"""


def dockerfile(base_image: str, uid: int = DEFAULT_UID) -> str:
    """The Dockerfile that builds the SuperNode image on ``base_image``."""
    return _TEMPLATE.format(base=base_image, wheelhouse=WHEELHOUSE, venv=VENV, uid=int(uid))


def recipe_digest(base_image: str, arch: str, wheelhouse_name: str, uid: int = DEFAULT_UID) -> str:
    """SHA-256 of the recipe: what the image is built from and how."""
    key = json.dumps(
        {
            "version": RECIPE_VERSION,
            "dockerfile": dockerfile(base_image, uid),
            "base_image": base_image,
            "arch": arch,
            "wheelhouse": wheelhouse_name,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()


def image_tag(repository: str, arch: str, digest: str) -> str:
    return f"{repository}:{arch}-{digest[:12]}"


def archive_name(repository: str, arch: str, digest: str) -> str:
    return f"{repository.replace('/', '_')}-{arch}-{digest[:12]}.tar.gz"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _platform_config(config: dict, arch: str, variant: str | None) -> bool:
    """Set architecture (and variant) in an image config; True if it changed."""
    before = (config.get("architecture"), config.get("variant"))
    config["architecture"] = arch
    if variant:
        config["variant"] = variant
    else:
        config.pop("variant", None)
    return before != (arch, variant)


def relabel(source: str, dest: str, arch: str, compress: bool = True) -> dict:
    """Copy the ``docker save`` archive ``source`` to ``dest`` with ``arch`` in its image config.

    Handles Docker's classic save format (``manifest.json``, ``<id>.json``,
    ``<layer>/layer.tar``) and the OCI layout that Docker 25+ writes besides
    ``manifest.json`` (``index.json``, ``blobs/sha256/...``). Layers are not
    touched. Returns ``{"changed": bool, "image_id": "sha256:..."}``; the image
    ID is the digest of the (new) config, what ``docker load`` will report.
    """
    if arch not in PLATFORMS:
        raise ValueError(f"unsupported architecture {arch!r}")
    docker_arch, variant = PLATFORMS[arch]
    with tarfile.open(source, "r:*") as tar:
        members = tar.getmembers()
        names = {m.name for m in members}

        def read(name: str) -> bytes:
            handle = tar.extractfile(name)
            if handle is None:
                raise ValueError(f"{name} is not a regular file in {source}")
            return handle.read()

        if "manifest.json" not in names:
            raise ValueError(f"{source} is not a docker save archive (no manifest.json)")
        manifest = json.loads(read("manifest.json"))
        replaced: dict[str, bytes] = {}  # member name -> new content (same name)
        renamed: dict[str, tuple[str, bytes]] = {}  # old member -> (new name, content)
        new_configs: dict[str, tuple[str, int]] = {}  # old config digest -> (new digest, size)
        changed = False
        image_id = ""
        for entry in manifest:
            old_name = entry["Config"]
            old_bytes = read(old_name)
            config = json.loads(old_bytes)
            if not _platform_config(config, docker_arch, variant):
                image_id = f"sha256:{_sha256(old_bytes)}"
                continue
            changed = True
            new_bytes = _dump(config)
            new_hex = _sha256(new_bytes)
            image_id = f"sha256:{new_hex}"
            oci = old_name.startswith("blobs/")
            new_name = f"blobs/sha256/{new_hex}" if oci else f"{new_hex}.json"
            renamed[old_name] = (new_name, new_bytes)
            new_configs[f"sha256:{_sha256(old_bytes)}"] = (image_id, len(new_bytes))
            entry["Config"] = new_name
        if changed:
            replaced["manifest.json"] = _dump(manifest)
        if changed and "index.json" in names:
            index = json.loads(read("index.json"))

            def rewrite(descriptor: dict) -> bool:
                """Point a manifest (or index) descriptor at rewritten blobs."""
                path = _blob_path(descriptor["digest"])
                if path not in names or path in renamed:
                    return False
                document = json.loads(read(path))
                touched = False
                config = document.get("config")
                if config and config.get("digest") in new_configs:
                    config["digest"], config["size"] = new_configs[config["digest"]]
                    touched = True
                for child in document.get("manifests", []):
                    touched |= rewrite(child)
                if not touched:
                    return False
                data = _dump(document)
                digest = f"sha256:{_sha256(data)}"
                renamed[path] = (_blob_path(digest), data)
                descriptor["digest"], descriptor["size"] = digest, len(data)
                if "platform" in descriptor:
                    _platform_config(descriptor["platform"], docker_arch, variant)
                return True

            if any([rewrite(d) for d in index.get("manifests", [])]):
                replaced["index.json"] = _dump(index)

        with (
            gzip.open(dest, "wb", compresslevel=6) if compress else open(dest, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out,
        ):
            for member in members:
                if member.name in renamed:
                    new_name, data = renamed[member.name]
                    out.addfile(_file_like(member, new_name, data), BytesIO(data))
                elif member.name in replaced:
                    data = replaced[member.name]
                    out.addfile(_file_like(member, member.name, data), BytesIO(data))
                elif member.isfile():
                    out.addfile(member, tar.extractfile(member))
                else:
                    out.addfile(member)
    return {"changed": changed, "image_id": image_id}


def _file_like(member: tarfile.TarInfo, name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = member.mode
    info.mtime = member.mtime
    info.uid, info.gid = member.uid, member.gid
    return info
