"""ssl-assets: the manifest, fetching Debian packages, and the SoundFont player."""
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from model.synth.assets import DEFAULT_DIR, DEFAULT_MANIFEST, fetch, load_manifest, main
from model.synth.soundfont import SoundFont

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / DEFAULT_DIR
SF2 = ["fluid-soundfont-gm:usr/share/sounds/sf2/FluidR3_GM.sf2", "timgm6mb-soundfont:usr/share/sounds/sf2/TimGM6mb.sf2"]
needs_assets = pytest.mark.skipif(
    not (ASSETS / "tuxpaint-stamps-default" / ".version").is_file(),
    reason=f"real assets absent: run `make assets` (ssl-assets {DEFAULT_DIR}) to test them")


def test_bundled_manifest_lists_classes_with_images_sounds_and_licences():
    manifest = load_manifest()
    names = [c.name for c in manifest.classes]
    heard, unheard = {c.name for c in manifest.split("heard")}, {c.name for c in manifest.split("unheard")}
    assert len(names) >= 50 and len(heard) >= 40 and len(unheard) >= 10
    assert heard.isdisjoint(unheard) and heard | unheard == set(names)
    packages = {p.name for p in manifest.packages}
    assert not any("gcompris" in name for name in packages)  # kept as an independent test set
    assert all(p.version and p.licence for p in manifest.packages)
    for cls in manifest.classes:
        assert cls.licence and cls.images and all(i.endswith(".png") for i in cls.images)
        assert cls.sounds and all(s.endswith((".ogg", ".flac")) for s in cls.sounds)
        assert all(not Path(s).stem.endswith("_desc") for s in cls.sounds)  # no spoken descriptions
    assert {c.name for c in manifest.classes if c.soundfont} >= {"violin", "cello", "drum kit"}
    assert len(manifest.backgrounds) >= 10 and all(b.licence and b.author for b in manifest.backgrounds)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["classes"].append(dict(m["classes"][0])), "repeat"),
    (lambda m: m["classes"][0].update(split="seen"), "split"),
    (lambda m: m["classes"][0].update(images=["nowhere:a.png"]), "names no package"),
    (lambda m: m.pop("backgrounds"), "cannot read"),
])
def test_malformed_manifest_is_refused_with_the_reason(tmp_path, change, message):
    raw = json.loads(DEFAULT_MANIFEST.read_text())
    change(raw)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message):
        load_manifest(path)


@needs_assets
def test_every_listed_file_exists_after_ssl_assets_and_is_usable():
    from model.synth.real_audio import load_recording
    from model.synth.real_scene import load_cutout

    manifest = load_manifest()
    assert manifest.missing(ASSETS) == []
    for cls in manifest.classes:
        for image in cls.images:
            rgb, alpha = load_cutout(str(manifest.path(ASSETS, image)))
            assert (alpha > 0.5).mean() > 0.1 and rgb.shape[:2] == alpha.shape  # cropped to the object
        for sound in cls.sounds:
            assert np.sqrt(np.mean(load_recording(str(manifest.path(ASSETS, sound))) ** 2)) > 1e-3


def test_ssl_assets_says_what_is_missing_without_apt_get(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg-deb
    with pytest.raises(RuntimeError, match="apt-get not found"):
        fetch(tmp_path / "assets")
    assert main([str(tmp_path / "assets")]) == 1
    assert "Debian or Ubuntu" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None,
                    reason="needs dpkg-deb and apt-get (Debian/Ubuntu)")
def test_fetch_unpacks_a_downloaded_package_once(tmp_path):
    """A package already in DIR/debs is unpacked (no download), and a second run leaves it as it is."""
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: ssl-test-assets\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
    (tree / "usr/share/t").mkdir(parents=True)
    (tree / "usr/share/t/a.png").write_bytes(b"png")
    (tree / "usr/share/t/a.ogg").write_bytes(b"ogg")
    root = tmp_path / "assets"
    (root / "debs").mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-b", str(tree), str(root / "debs" / "ssl-test-assets_1.0-1_all.deb")],
                   check=True, capture_output=True)
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps({
        "packages": [{"name": "ssl-test-assets", "version": "1.0-1", "licence": "CC0-1.0", "copyright": "t",
                      "base": "usr/share/t", "use": "test"}],
        "classes": [{"class": "thing", "split": "heard", "images": ["ssl-test-assets:a.png"],
                     "sounds": ["ssl-test-assets:a.ogg"], "licence": "CC0-1.0"}],
        "backgrounds": []}))
    manifest = load_manifest(manifest_path)
    log = []
    assert fetch(root, manifest, log.append) == []
    assert (root / "ssl-test-assets/usr/share/t/a.png").read_bytes() == b"png"
    assert (root / "ssl-test-assets/.version").read_text().strip() == "1.0-1"
    assert fetch(root, manifest, log.append) == [] and "unpacked already" in log[-1]


def write_sf2(path, sample_rate=44000, root_key=69, period=100, periods=44):
    """A one-preset SoundFont: a looped sine of one period = ``period`` samples (440 Hz at 44 kHz)."""
    samples = (0.5 * 32767 * np.sin(2 * np.pi * np.arange(period * periods) / period)).astype("<i2")
    n = len(samples)

    def chunk(cid, data):
        return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def listed(kind, *chunks):
        return chunk(b"LIST", kind + b"".join(chunks))

    def name(text):
        return text.encode().ljust(20, b"\0")

    pdta = listed(
        b"pdta",
        chunk(b"phdr", struct.pack("<20sHHHIII", name("Sine"), 0, 0, 0, 0, 0, 0)
              + struct.pack("<20sHHHIII", name("EOP"), 0, 0, 1, 0, 0, 0)),
        chunk(b"pbag", struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)),
        chunk(b"pmod", b"\0" * 10),
        chunk(b"pgen", struct.pack("<HH", 41, 0) + struct.pack("<HH", 0, 0)),
        chunk(b"inst", struct.pack("<20sH", name("Sine"), 0) + struct.pack("<20sH", name("EOI"), 1)),
        chunk(b"ibag", struct.pack("<HH", 0, 0) + struct.pack("<HH", 3, 0)),
        chunk(b"imod", b"\0" * 10),
        chunk(b"igen", struct.pack("<HH", 43, 127 << 8) + struct.pack("<HH", 54, 1) + struct.pack("<HH", 53, 0)
              + struct.pack("<HH", 0, 0)),
        chunk(b"shdr", struct.pack("<20sIIIIIBbHH", name("sine"), 0, n, 0, n, sample_rate, root_key, 0, 0, 1)
              + struct.pack("<20sIIIIIBbHH", name("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)))
    body = b"sfbk" + listed(b"INFO", chunk(b"ifil", struct.pack("<HH", 2, 1))) + listed(
        b"sdta", chunk(b"smpl", samples.tobytes())) + pdta
    Path(path).write_bytes(chunk(b"RIFF", body))


def fundamental(x, sr):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sr / len(x)


def test_soundfont_note_is_pitched_and_sustained_by_its_loop(tmp_path):
    write_sf2(tmp_path / "sine.sf2")
    font = SoundFont(tmp_path / "sine.sf2")
    (region,) = font.regions(0, 0)
    assert region.loop == (0, 4400) and region.root == 69
    sr = 44000
    a4 = font.note(0, 0, 69, 127, 1.0, sr)  # the sample lasts 0.1 s: the loop carries the rest
    a5 = font.note(0, 0, 81, 127, 1.0, sr)
    assert abs(fundamental(a4[sr // 2:sr], sr) - 440) < 3
    assert abs(fundamental(a5[sr // 2:sr], sr) - 880) < 3
    held, released = a4[int(0.8 * sr):sr], a4[-int(0.01 * sr):]
    assert np.sqrt(np.mean(held ** 2)) > 0.3 and np.abs(released).max() < 0.05
    assert np.sqrt(np.mean(font.note(0, 0, 69, 64, 1.0, sr)[:sr] ** 2)) < np.sqrt(np.mean(a4[:sr] ** 2))
    with pytest.raises(ValueError, match="no preset"):
        font.regions(128, 0)


def test_a_file_that_is_not_a_soundfont_is_refused(tmp_path):
    (tmp_path / "x.sf2").write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    with pytest.raises(ValueError, match="not a SoundFont"):
        SoundFont(tmp_path / "x.sf2")


@needs_assets
@pytest.mark.parametrize("ref", SF2)
def test_debian_soundfont_instruments_play_at_their_pitch(ref):
    font = SoundFont(load_manifest().path(ASSETS, ref))
    violin = font.note(0, 40, 69, 100, 1.0, 44100)  # A4
    assert abs(fundamental(violin[11025:33075], 44100) - 440) < 15
    assert np.abs(font.note(128, 0, 38, 100, 0.1, 44100)).max() > 0.1  # the standard kit's snare


@needs_assets
def test_every_soundfont_class_plays_through_the_clip():
    from model.synth.real_audio import soundfont_phrase

    manifest = load_manifest()
    for cls in (c for c in manifest.classes if c.soundfont):
        for file in cls.soundfont["files"]:
            x = soundfont_phrase(np.random.default_rng(0), str(manifest.path(ASSETS, file)), cls.soundfont,
                                 16000, 4.0)
            peaks = np.abs(x).reshape(8, -1).max(axis=1)  # every half second
            assert len(x) == 64000 and np.isfinite(x).all() and (peaks > 0.01).sum() >= 6, (cls.name, file)


def test_ssl_assets_pools_prints_every_class_per_pool(capsys):
    assert main(["--pools"]) == 0
    table = capsys.readouterr().out.splitlines()
    manifest = load_manifest()
    assert len(table) == 2 + len(manifest.classes) + 1  # header, one row per class, the backgrounds
    for cls, row in zip(manifest.classes, table[2:]):
        photos = [int(v) for v in row.split("|")[3].split("/")]
        assert row.startswith(f"| {cls.name} | {cls.split} |") and sum(photos) == len(cls.images) and photos[0] >= 1


def test_files_added_to_a_class_are_dealt_after_the_others_and_move_none(tmp_path):
    """A class's added photos and recordings take the pools after its first files, whatever their hashes."""
    from dataclasses import replace

    from model.synth.assets import POOL_ORDER, Manifest

    shipped = load_manifest()
    assert any(c.added for c in shipped.classes)
    before = Manifest(shipped.packages, tuple(replace(c, images=tuple(r for r in c.images if r not in c.added),
                                                      sounds=tuple(r for r in c.sounds if r not in c.added), added=())
                                              for c in shipped.classes), shipped.backgrounds)
    assert all(before.pool(ref) == shipped.pool(ref) for ref in before.refs())
    raw = json.loads(DEFAULT_MANIFEST.read_text())
    cls = {"class": "thing", "split": "heard", "images": ["tuxpaint-stamps-default:a.png"],
           "sounds": [f"tuxpaint-stamps-default:s{k}.ogg" for k in range(2)], "licence": "t",
           "added_sounds": [f"tuxpaint-stamps-default:t{k}.ogg" for k in range(8)]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({**raw, "classes": [cls]}))
    manifest = load_manifest(path)
    first = sorted(manifest.pool(r) for r in cls["sounds"])
    assert first == sorted(POOL_ORDER[:2])
    assert sorted(manifest.pool(r) for r in cls["added_sounds"]) == sorted((POOL_ORDER * 2)[2:10])
