"""A small SoundFont 2 player: the recorded samples of a preset, pitched and looped per note.

Reads the RIFF structure (``smpl`` sample data, ``phdr/pbag/pgen`` presets, ``inst/ibag/igen``
instruments, ``shdr`` sample headers) and plays a note by resampling the matching sample regions
(key and velocity ranges, root key, tuning, loop points, attenuation, release time). Filters,
modulators and the other envelope stages of the format are not applied: this is enough to turn the
recordings of a sampled instrument into notes, not a full synthesizer.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Region", "SoundFont", "open_soundfont"]

# generator operators of the SoundFont 2.04 specification (section 8.1.2)
GEN_PAN, GEN_RELEASE, GEN_INSTRUMENT, GEN_KEYS, GEN_VELS = 17, 38, 41, 43, 44
GEN_ATTENUATION, GEN_COARSE, GEN_FINE, GEN_SAMPLE, GEN_MODES, GEN_ROOT = 48, 51, 52, 53, 54, 58
ATTACK = 0.005  # seconds


@dataclass(frozen=True)
class Region:
    """One sample zone of a preset: which notes it plays and how."""

    keys: tuple[int, int]
    vels: tuple[int, int]
    start: int  # sample frames in the smpl chunk
    end: int
    loop: tuple[int, int] | None  # loop start/end relative to start, None: play once
    rate: int
    root: int
    cents: float  # fine tuning
    gain: float
    release: float  # seconds to -60 dB after note off


def _signed(value: int) -> int:
    return value - 65536 if value > 32767 else value


def _range(value: int) -> tuple[int, int]:
    return value & 0xFF, value >> 8


class SoundFont:
    """A SoundFont 2 file, memory-mapped; ``regions(bank, preset)`` and ``note(...)`` play it."""

    def __init__(self, path):
        self.path = str(path)
        data = np.memmap(self.path, dtype=np.uint8, mode="r")
        if bytes(data[:4]) != b"RIFF" or bytes(data[8:12]) != b"sfbk":
            raise ValueError(f"{path} is not a SoundFont 2 file")
        chunks = {}
        for _, offset, size in self._chunks(data, 12, len(data)):
            for cid, sub, sub_size in self._chunks(data, offset + 4, offset + size):
                chunks[cid] = (sub, sub_size)
        offset, size = chunks["smpl"]
        self.samples = np.frombuffer(data, dtype="<i2", count=size // 2, offset=offset)
        read = lambda cid, fmt: self._records(data, *chunks[cid], fmt)  # noqa: E731
        self.phdr = read("phdr", "<20sHHHIII")
        self.pbag, self.ibag = read("pbag", "<HH"), read("ibag", "<HH")
        self.pgen, self.igen = read("pgen", "<HH"), read("igen", "<HH")
        self.inst = read("inst", "<20sH")
        self.shdr = read("shdr", "<20sIIIIIBbHH")

    @staticmethod
    def _chunks(data, start, end):
        while start + 8 <= end:
            cid = bytes(data[start:start + 4]).decode("latin-1")
            size = struct.unpack("<I", bytes(data[start + 4:start + 8]))[0]
            yield cid, start + 8, size
            start += 8 + size + (size & 1)

    @staticmethod
    def _records(data, offset, size, fmt):
        n = struct.calcsize(fmt)
        raw = bytes(data[offset:offset + size - size % n])
        return [struct.unpack_from(fmt, raw, i) for i in range(0, len(raw), n)]

    def _zones(self, bags, gens, first, last, terminal):
        """Generator dicts of bags ``first..last-1``: (global zone, local zones ending in ``terminal``)."""
        zones = [{op: amount for op, amount in gens[bags[b][0]:bags[b + 1][0]]} for b in range(first, last)]
        glob = zones.pop(0) if zones and terminal not in zones[0] else {}
        return glob, [z for z in zones if terminal in z]

    @lru_cache(maxsize=None)
    def regions(self, bank: int, preset: int) -> tuple[Region, ...]:
        """Every sample region of preset ``preset`` in ``bank`` (128 is the drum kits)."""
        index = next((i for i, h in enumerate(self.phdr[:-1]) if h[1] == preset and h[2] == bank), None)
        if index is None:
            raise ValueError(f"{self.path} has no preset {bank}:{preset}")
        p_glob, p_zones = self._zones(self.pbag, self.pgen, self.phdr[index][3], self.phdr[index + 1][3],
                                      GEN_INSTRUMENT)
        out = []
        for p_zone in p_zones:
            pz = {**p_glob, **p_zone}
            inst = pz[GEN_INSTRUMENT]
            i_glob, i_zones = self._zones(self.ibag, self.igen, self.inst[inst][1], self.inst[inst + 1][1],
                                          GEN_SAMPLE)
            for i_zone in i_zones:
                iz = {**i_glob, **i_zone}
                keys = [_range(z.get(GEN_KEYS, 0x7F00)) for z in (pz, iz)]
                vels = [_range(z.get(GEN_VELS, 0x7F00)) for z in (pz, iz)]
                name, start, end, loop_start, loop_end, rate, pitch, correction, _, _ = self.shdr[iz[GEN_SAMPLE]]
                root = iz.get(GEN_ROOT, 0xFFFF)
                semis = sum(_signed(z.get(GEN_COARSE, 0)) for z in (pz, iz))
                cents = sum(_signed(z.get(GEN_FINE, 0)) for z in (pz, iz)) + correction + 100 * semis
                looped = iz.get(GEN_MODES, 0) & 1 and loop_end > loop_start + 8
                attenuation = sum(_signed(z.get(GEN_ATTENUATION, 0)) for z in (pz, iz))  # centibels
                release = 2.0 ** (_signed(iz.get(GEN_RELEASE, -12000)) / 1200)
                out.append(Region((max(keys[0][0], keys[1][0]), min(keys[0][1], keys[1][1])),
                                  (max(vels[0][0], vels[1][0]), min(vels[0][1], vels[1][1])),
                                  start, end, (loop_start - start, loop_end - start) if looped else None,
                                  rate, pitch if root > 127 else root, float(cents),
                                  10 ** (-0.4 * attenuation / 200), float(np.clip(release, 0.05, 1.5))))
        return tuple(out)

    def note(self, bank: int, preset: int, key: int, velocity: int, seconds: float, sr: int) -> np.ndarray:
        """Key ``key`` held ``seconds`` (then released) at ``sr`` Hz, mono float32; looped samples sustain."""
        parts = []
        for r in self.regions(bank, preset):
            if not (r.keys[0] <= key <= r.keys[1] and r.vels[0] <= velocity <= r.vels[1]):
                continue
            data = self.samples[r.start:r.end].astype(np.float32) / 32768
            step = 2.0 ** ((key - r.root) / 12 + r.cents / 1200) * r.rate / sr
            n = int((seconds + r.release) * sr)
            pos = np.arange(n) * step
            if r.loop is None:
                pos = pos[pos < len(data) - 1]
            else:
                ls, le = r.loop
                late = pos >= le
                pos[late] = ls + (pos[late] - ls) % (le - ls)
            t = np.arange(len(pos)) / sr
            env = np.minimum(1.0, t / ATTACK) * np.exp(-np.maximum(t - seconds, 0.0) * 6.9 / r.release)
            parts.append(r.gain * env * np.interp(pos, np.arange(len(data)), data))
        if not parts:
            return np.zeros(0, np.float32)
        out = np.zeros(max(len(p) for p in parts))
        for p in parts:
            out[:len(p)] += p
        return (out * (velocity / 127) ** 2).astype(np.float32)


@lru_cache(maxsize=4)
def open_soundfont(path) -> SoundFont:
    """One parsed SoundFont per path and process."""
    return SoundFont(path)
