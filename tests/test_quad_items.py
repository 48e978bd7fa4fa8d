"""The quad test's items: a test pool that nothing else uses, and the fetch of what it needs."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from model.synth.assets import DEFAULT_DIR, Manifest, Package, fetch, load_manifest
from model.evaluation.quad import load_spec, photo_choices, speech_files
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
    # instruments and people: the one unused animal photograph found (the mandrill) is a val distractor already
    assert {i.category for i in items} == {"music", "person"}
    assert len({i.what for i in items if i.category == "music"}) >= 3  # several kinds of instrument, not one
    assert sum(i.category == "music" for i in items) >= 5
    assert sum(i.category == "person" for i in items) >= 12
    assert len(spec.distractors["test"]) >= 15
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
        for ref in [item.sound] if item.sound else item.notes["files"] if item.notes else []:
            audio = load_recording(str(spec.path(ASSETS, ref)))
            digest = hashlib.sha256(np.round(audio * 2 ** 15).astype(np.int16).tobytes()).hexdigest()
            kinds.setdefault(digest, set()).add(item.what)
    assert all(len(k) == 1 for k in kinds.values()), [sorted(k) for k in kinds.values() if len(k) > 1]


def test_a_person_s_grids_show_no_one_else_and_a_guitarist_s_photo_is_no_off_screen_one():
    """Speech over a grid with someone else in it (another person, a guitarist) could be theirs: a person's grids
    never show another photo with people, while the guitarist's own grids and an animal's off-screen ones do."""
    spec = load_spec()
    with_people = {i.photo for i in spec.items if i.has_people}
    shown = {i.photo for i in spec.items if i.shows_people and i.pool == "test"}
    assert shown and shown < with_people  # the test pool's guitarists are marked
    for item in spec.items:
        fillers, away = photo_choices(spec, item.pool, item)
        if item.category == "person":
            assert not (set(fillers) | set(away)) & with_people, item.name
        elif item.category == "animal":
            assert set(away) <= {i.photo for i in spec.items if i.category in ("music", "person")}
    guitarist = next(i for i in spec.items if i.shows_people and i.pool == "test")
    other = next(i for i in spec.items if i.pool == "test" and i.category != "person" and i.what != guitarist.what)
    assert guitarist.photo in photo_choices(spec, "test", other)[0]


@pytest.mark.parametrize("one, other", [("dingo", "dalmatian"), ("zebu", "Holstein cow"), ("yak", "calf"),
                                        ("black cat", "Maine Coon cat"), ("goose", "domestic goose"),
                                        ("foal", "horses in a field"), ("mountain goat", "sheep in a field"),
                                        ("sparrow", "nuthatch on a trunk"), ("eagle-owl in a tree", "owl in flight")])
def test_an_animal_s_grids_show_no_other_animal_whose_sound_is_alike(one, other):
    """A bark over a grid with two dogs, a moo with two cattle, a bleat with a goat and a sheep could come from
    either: such items are of one kind and never fill each other's grids."""
    spec = load_spec()
    items = {i.name: i for i in spec.items if i.pool == "val"}
    assert items[one].what == items[other].what
    assert items[other].photo not in photo_choices(spec, "val", items[one])[0]
    assert items[one].photo not in photo_choices(spec, "val", items[other])[0]


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


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None,
                    reason="needs dpkg-deb and apt-get (Debian/Ubuntu)")
def test_fetch_keeps_only_the_members_of_a_debian_package(tmp_path):
    root = tmp_path / "assets"
    (root / "debs").mkdir(parents=True)
    write_deb(root / "debs" / "ssl-test-voices_1.0-1_all.deb", "ssl-test-voices",
              {"usr/share/voices/a/hello.ogg": b"hello", "usr/share/voices/b/bye.ogg": b"bye",
               "usr/share/doc/ssl-test-voices/copyright": b"c"})
    package = Package("ssl-test-voices", "1.0-1", "CC0-1.0", "t", "usr/share/voices", "test",
                      archive={"members": ["usr/share/voices/a/", "usr/share/doc/"]})
    manifest = Manifest((package,), (), ())
    assert fetch(root, manifest, [].append) == []
    voices = root / "ssl-test-voices"
    assert sorted(p.relative_to(voices).as_posix() for p in voices.rglob("*") if p.is_file()) == [
        ".version", "usr/share/doc/ssl-test-voices/copyright", "usr/share/voices/a/hello.ogg"]
    assert manifest.path(root, "ssl-test-voices:a/hello.ogg").read_bytes() == b"hello"


def write_npm_tarball(path, name, version, files):
    """An npm tarball as the registry serves it: every file under ``package/``, its package.json among them."""
    with tarfile.open(path, "w:gz") as tar:
        for rel, data in {"package.json": json.dumps({"name": name, "version": version}).encode(), **files}.items():
            info = tarfile.TarInfo(f"package/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_fetch_packs_an_npm_package_and_keeps_its_members_without_the_top_folder(tmp_path, monkeypatch):
    """``npm pack NAME@VERSION`` (a stand-in npm that hands out a prepared tarball) into DIR/npm, unpacked
    without ``package/``, only the members; a second fetch leaves it, a tarball of another version is refused."""
    registry, tools = tmp_path / "registry", tmp_path / "bin"
    registry.mkdir()
    tools.mkdir()
    write_npm_tarball(registry / "ssl-test-kit-1.2.3.tgz", "@ssl/test-kit", "1.2.3",
                      {"dist/img/a.jpg": b"jpg", "dist/img/b.jpg": b"b", "dist/app.js": b"js", "LICENSE": b"MIT"})
    (tools / "npm").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/npm.log\ncp {registry}/ssl-test-kit-1.2.3.tgz .\n')
    (tools / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    package = Package("@ssl/test-kit", "1.2.3", "MIT", "t", "", "test", registry="npm",
                      archive={"members": ["dist/img/a.jpg", "LICENSE"]})
    manifest, root, log = Manifest((package,), (), ()), tmp_path / "assets", []
    assert fetch(root, manifest, log.append) == []
    assert (tmp_path / "npm.log").read_text().split() == ["pack", "--ignore-scripts", "--loglevel=warn",
                                                          "@ssl/test-kit@1.2.3"]
    assert (root / "npm" / "ssl-test-kit-1.2.3.tgz").is_file()  # the tarball is kept, like a .deb or a wheel
    kit = root / "@ssl" / "test-kit"
    assert manifest.path(root, "@ssl/test-kit:dist/img/a.jpg").read_bytes() == b"jpg"
    assert sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()) == [
        ".version", "LICENSE", "dist/img/a.jpg"]
    assert (kit / ".version").read_text().strip() == "1.2.3"
    fetch(root, manifest, log.append)
    assert "unpacked already" in log[-1] and len((tmp_path / "npm.log").read_text().splitlines()) == 1
    other, elsewhere = Package("@ssl/test-kit", "1.2.4", "MIT", "t", "", "test", registry="npm"), tmp_path / "other"
    (elsewhere / "npm").mkdir(parents=True)
    shutil.copy(registry / "ssl-test-kit-1.2.3.tgz", elsewhere / "npm" / "ssl-test-kit-1.2.4.tgz")
    with pytest.raises(RuntimeError, match="holds @ssl/test-kit@1.2.3, not @ssl/test-kit@1.2.4"):
        fetch(elsewhere, Manifest((other,), (), ()), log.append)


def test_fetch_of_an_npm_package_without_npm_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    package = Package("ssl-test-kit", "1.0.0", "MIT", "t", "", "test", registry="npm")
    with pytest.raises(RuntimeError, match="npm not found"):
        fetch(tmp_path / "assets", Manifest((package,), (), ()), [].append)
