"""The SuperNode image's recipe digest and the architecture fix of its saved archive.

Pure logic from collection/plugins/plugin_utils/container_image.py: the
digest decides when the controller rebuilds the image, and the relabelled
archive must still be one that ``docker load`` accepts (config named by its
digest, manifests pointing at it, layers untouched).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "playbooks" / "collections"))

from ansible_collections.fledge.edge.plugins.plugin_utils import (  # noqa: E402
    container_image as ci,
)

WHEELHOUSE = "aarch64-py3.11-glibc2.36-0123456789ab.tar"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the recipe ---------------------------------------------------------------


def test_digest_is_stable_and_covers_every_input() -> None:
    base = ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE)
    assert base == ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE)
    others = {
        ci.recipe_digest("debian:trixie-slim", "arm64", WHEELHOUSE),
        ci.recipe_digest("debian:bookworm-slim", "amd64", WHEELHOUSE),
        ci.recipe_digest("debian:bookworm-slim", "arm64", "x86_64-py3.11-glibc2.36-ffff.tar"),
        ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE, uid=1234),
    }
    assert base not in others and len(others) == 4


def test_digest_follows_the_dockerfile(monkeypatch: pytest.MonkeyPatch) -> None:
    before = ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE)
    monkeypatch.setattr(ci, "_TEMPLATE", ci._TEMPLATE + "LABEL changed=1\n")
    assert ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE) != before
    monkeypatch.undo()
    monkeypatch.setattr(ci, "RECIPE_VERSION", ci.RECIPE_VERSION + 1)
    assert ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE) != before


def test_names_carry_the_architecture_and_digest() -> None:
    digest = ci.recipe_digest("debian:bookworm-slim", "arm64", WHEELHOUSE)
    assert (
        ci.image_tag("fledge-supernode", "arm64", digest) == f"fledge-supernode:arm64-{digest[:12]}"
    )
    assert ci.archive_name("fledge/supernode", "arm64", digest) == (
        f"fledge_supernode-arm64-{digest[:12]}.tar.gz"
    )


def test_dockerfile_installs_offline_and_runs_unprivileged() -> None:
    text = ci.dockerfile("fledge-lab:arm64-rootfs-abc", uid=49999)
    assert text.splitlines()[1] == "FROM fledge-lab:arm64-rootfs-abc AS runtime"
    assert "--no-index" in text and "--find-links /wheels" in text
    # The wheels stay in the build stage; the final stage copies the venv only.
    final = text[text.rindex("\nFROM ") :]
    assert "wheel" not in final.lower()
    assert "COPY --from=build /opt/flwr /opt/flwr" in final
    assert "USER 49999:49999" in final
    assert 'ENTRYPOINT ["flower-supernode"]' in final


# -- the archive --------------------------------------------------------------


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _dump(document: object) -> bytes:
    return json.dumps(document).encode()


CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"User": "49999:49999", "Entrypoint": ["flower-supernode"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
}
LAYER = b"layer content, not a real tar"


def classic_archive(path: Path, config: dict = CONFIG) -> str:
    """What Docker 20.10's `docker save` writes."""
    data = _dump(config)
    name = f"{sha256(data)}.json"
    with tarfile.open(path, "w") as tar:
        directory = tarfile.TarInfo("0123abcd")  # the layer's directory entry
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        _add(tar, "0123abcd/VERSION", b"1.0")
        _add(tar, "0123abcd/json", b'{"id":"0123abcd"}')
        _add(tar, "0123abcd/layer.tar", LAYER)
        _add(tar, name, data)
        manifest = [
            {
                "Config": name,
                "RepoTags": ["fledge-supernode:arm64-x"],
                "Layers": ["0123abcd/layer.tar"],
            }
        ]
        _add(tar, "manifest.json", _dump(manifest))
        _add(tar, "repositories", b'{"fledge-supernode":{"arm64-x":"0123abcd"}}')
    return name


def oci_archive(path: Path) -> dict:
    """What Docker 25+ writes: an OCI layout plus manifest.json."""
    config = _dump(CONFIG)
    config_digest = f"sha256:{sha256(config)}"
    layer_digest = f"sha256:{sha256(LAYER)}"
    manifest = _dump(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(LAYER),
                }
            ],
        }
    )
    manifest_digest = f"sha256:{sha256(manifest)}"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    with tarfile.open(path, "w") as tar:
        _add(tar, f"blobs/sha256/{layer_digest[7:]}", LAYER)
        _add(tar, f"blobs/sha256/{config_digest[7:]}", config)
        _add(tar, f"blobs/sha256/{manifest_digest[7:]}", manifest)
        _add(tar, "index.json", _dump(index))
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        docker_manifest = [
            {
                "Config": f"blobs/sha256/{config_digest[7:]}",
                "RepoTags": ["x:y"],
                "Layers": [f"blobs/sha256/{layer_digest[7:]}"],
            }
        ]
        _add(tar, "manifest.json", _dump(docker_manifest))
    return {"config": config_digest, "manifest": manifest_digest}


def read_all(path: Path) -> tuple[list[str], dict[str, bytes]]:
    with tarfile.open(path, "r:*") as tar:
        names = [m.name for m in tar.getmembers()]
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    return names, files


def test_classic_archive_gets_arm64_with_consistent_names(tmp_path: Path) -> None:
    source, dest = tmp_path / "image.tar", tmp_path / "fixed.tar.gz"
    old_name = classic_archive(source)
    result = ci.relabel(str(source), str(dest), "arm64")
    assert result["changed"]
    with gzip.open(dest) as raw:  # compressed, as docker load accepts it
        raw.read(1)
    names, files = read_all(dest)
    manifest = json.loads(files["manifest.json"])
    new_name = manifest[0]["Config"]
    assert new_name != old_name and old_name not in names
    config_bytes = files[new_name]
    assert new_name == f"{sha256(config_bytes)}.json"
    assert result["image_id"] == f"sha256:{sha256(config_bytes)}"
    config = json.loads(config_bytes)
    assert (config["architecture"], config["variant"], config["os"]) == ("arm64", "v8", "linux")
    assert config["config"] == CONFIG["config"] and config["rootfs"] == CONFIG["rootfs"]
    # Everything else is carried over as it was, in order.
    assert manifest[0]["RepoTags"] == ["fledge-supernode:arm64-x"]
    assert files["0123abcd/layer.tar"] == LAYER
    assert names.index("0123abcd") < names.index("0123abcd/layer.tar") < names.index(new_name)
    assert files["repositories"] == b'{"fledge-supernode":{"arm64-x":"0123abcd"}}'


def test_right_label_is_kept_as_it_is(tmp_path: Path) -> None:
    source, dest = tmp_path / "image.tar", tmp_path / "same.tar"
    name = classic_archive(source)
    result = ci.relabel(str(source), str(dest), "amd64", compress=False)
    assert not result["changed"]
    assert result["image_id"] == f"sha256:{name.removesuffix('.json')}"
    assert read_all(dest)[1] == read_all(source)[1]


def test_amd64_label_drops_an_arm_variant(tmp_path: Path) -> None:
    source, dest = tmp_path / "image.tar", tmp_path / "fixed.tar"
    classic_archive(source, {**CONFIG, "architecture": "arm64", "variant": "v8"})
    assert ci.relabel(str(source), str(dest), "amd64", compress=False)["changed"]
    files = read_all(dest)[1]
    config = json.loads(files[json.loads(files["manifest.json"])[0]["Config"]])
    assert config["architecture"] == "amd64" and "variant" not in config


def test_oci_layout_is_rewritten_down_the_chain(tmp_path: Path) -> None:
    source, dest = tmp_path / "image.tar", tmp_path / "fixed.tar.gz"
    old = oci_archive(source)
    ci.relabel(str(source), str(dest), "arm64")
    names, files = read_all(dest)
    # Every blob is named by its content's digest; the old config and manifest are gone.
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert name == f"blobs/sha256/{sha256(data)}"
    assert f"blobs/sha256/{old['config'][7:]}" not in names
    assert f"blobs/sha256/{old['manifest'][7:]}" not in names
    index = json.loads(files["index.json"])
    descriptor = index["manifests"][0]
    assert descriptor["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    manifest_bytes = files[f"blobs/sha256/{descriptor['digest'][7:]}"]
    assert descriptor["size"] == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    config_bytes = files[f"blobs/sha256/{manifest['config']['digest'][7:]}"]
    assert manifest["config"]["size"] == len(config_bytes)
    assert json.loads(config_bytes)["architecture"] == "arm64"
    docker_manifest = json.loads(files["manifest.json"])
    assert docker_manifest[0]["Config"] == f"blobs/sha256/{manifest['config']['digest'][7:]}"
    assert files[f"blobs/sha256/{sha256(LAYER)}"] == LAYER


def test_not_an_image_archive_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "other.tar"
    with tarfile.open(source, "w") as tar:
        _add(tar, "hello.txt", b"hi")
    with pytest.raises(ValueError, match=r"manifest\.json"):
        ci.relabel(str(source), str(tmp_path / "out.tar"), "arm64")
    with pytest.raises(ValueError, match="architecture"):
        ci.relabel(str(source), str(tmp_path / "out.tar"), "riscv64")
