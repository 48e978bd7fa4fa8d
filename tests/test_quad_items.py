"""The quad test's items: a test pool that nothing else uses, and the fetch of what it needs."""
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from model.synth.assets import DEFAULT_DIR, Manifest, Package, fetch, load_manifest
from model.evaluation.quad import load_spec, speech_files
from model.synth.real_audio import load_recording

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / DEFAULT_DIR
needs_quad_assets = pytest.mark.skipif(
    not all((ASSETS / p.name / ".version").is_file() for p in load_spec().packages),
    reason="the quad test's packages are absent: run `make assets`")


def files(spec, pool):
    """Every photo and recording of a pool (SoundFont files included), as paths under the assets folder."""
    items = [i for i in spec.items if i.pool == pool]
    refs = [*spec.refs(pool), *(f for i in items if i.soundfont for f in i.soundfont["files"])]
    return {spec.path("", ref).as_posix() for ref in refs}


def test_no_test_photo_or_recording_is_in_val_or_in_the_asset_manifest():
    spec, manifest = load_spec(), load_manifest()
    test, val = files(spec, "test"), files(spec, "val")
    used = {manifest.relative(ref) for ref in manifest.refs()}
    items = [i for i in spec.items if i.pool == "test"]
    assert test and not test & val and not test & used
    # animals and people: no registry package has unused photographs of instruments left (docs/RESULTS.md)
    assert {i.category for i in items} == {"animal", "person"}
    assert len({i.what for i in items if i.category == "animal"}) >= 4  # several kinds of animal, not one
    assert sum(i.category == "animal" for i in items) >= 7
    assert sum(i.category == "person" for i in items) >= 10
    assert len(spec.distractors["test"]) >= 12
    assert len({i.photo for i in items}) == len(items)
    assert all(not i.seen_recording for i in spec.items if i.pool == "test")
    assert not set(spec.speech_languages["test"]) & set(spec.speech_languages["val"])


def test_a_package_of_both_files_is_fetched_alike():
    """The quad test and the asset manifest unpack into one folder: a package they share is the same there."""
    def key(p):
        return (p.version, p.base, p.registry, json.dumps(p.archive, sort_keys=True))
    manifest = {p.name: key(p) for p in load_manifest().packages}
    for package in load_spec().packages:
        assert package.name not in manifest or manifest[package.name] == key(package), package.name


@needs_quad_assets
def test_every_file_of_the_quad_test_is_there_and_the_pools_hear_different_speech():
    spec = load_spec()
    assert spec.missing(ASSETS) == []
    test, val = set(speech_files(ASSETS, spec, "test")), set(speech_files(ASSETS, spec, "val"))
    assert len(test) >= 100 and len(val) >= 100 and not test & val
    manifest = load_manifest()

    def digests(paths):
        return {hashlib.sha256((ASSETS / path).read_bytes()).hexdigest() for path in paths}
    others = files(spec, "val") | {manifest.relative(ref) for ref in manifest.refs() if ".sf2" not in ref}
    assert not digests(files(spec, "test")) & digests(others)  # no file of the test pool under another name
    assert not digests(test) & digests(val)  # nor a recorded word


@needs_quad_assets
def test_no_two_kinds_of_thing_share_a_recording_s_sound():
    """One sound under two names (Tux Paint's badger and beaver make the same whistle) is neither's own."""
    spec = load_spec()
    kinds = {}
    for item in spec.items:
        if item.sound:
            audio = load_recording(str(spec.path(ASSETS, item.sound)))
            digest = hashlib.sha256(np.round(audio * 2 ** 15).astype(np.int16).tobytes()).hexdigest()
            kinds.setdefault(digest, set()).add(item.what)
    assert all(len(k) == 1 for k in kinds.values()), [sorted(k) for k in kinds.values() if len(k) > 1]


def write_deb(path, name, tree_files):
    tree = path.parent / f"{name}.tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
    for rel, data in tree_files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    subprocess.run(["dpkg-deb", "-b", str(tree), str(path)], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None,
                    reason="needs dpkg-deb and apt-get (Debian/Ubuntu)")
def test_fetch_keeps_only_the_members_of_a_packaged_archive_and_unpacks_a_wheel(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("audio/dog.ogg", b"woof")
        z.writestr("audio/music/long.ogg", b"la" * 1000)
        z.writestr("art/texture.png", b"png")
    root = tmp_path / "assets"
    (root / "debs").mkdir(parents=True)
    (root / "wheels").mkdir()
    write_deb(root / "debs" / "ssl-test-game_1.0-1_all.deb", "ssl-test-game",
              {"usr/share/game/data.zip": archive.read_bytes(), "usr/share/game/readme": b"r"})
    with zipfile.ZipFile(root / "wheels" / "ssl_test_photos-2.0-py3-none-any.whl", "w") as z:
        z.writestr("ssl_test_photos/data/cat.jpg", b"jpg")
    packages = (
        Package("ssl-test-game", "1.0-1", "CC0-1.0", "t", "audio", "test",
                archive={"file": "usr/share/game/data.zip", "members": ["audio/dog"]}),
        Package("ssl-test-photos", "2.0", "MIT", "t", "ssl_test_photos/data", "test", registry="pypi"))
    manifest = Manifest(packages, (), ())
    log = []
    assert fetch(root, manifest, log.append) == []
    game = root / "ssl-test-game"
    assert (game / "audio/dog.ogg").read_bytes() == b"woof" and manifest.path(root, "ssl-test-game:dog.ogg").is_file()
    assert sorted(p.relative_to(game).as_posix() for p in game.rglob("*") if p.is_file()) == [".version",
                                                                                           "audio/dog.ogg"]
    assert manifest.path(root, "ssl-test-photos:cat.jpg").read_bytes() == b"jpg"
    assert (root / "ssl-test-photos/.version").read_text().strip() == "2.0"
    fetch(root, manifest, log.append)
    assert all("unpacked already" in line for line in log[-2:])
