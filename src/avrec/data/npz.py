"""Reading the arrays of an ``.npz`` file as ``np.savez`` writes it, quickly and without
holding the interpreter lock while the bytes are copied.

``np.load`` reads a member through ``zipfile`` a quarter of a million elements at a time,
computing a CRC and copying each chunk in Python between reads. ``np.savez`` stores its members
uncompressed, so an array's bytes lie contiguously in the file: :func:`read_npz` reads them
with one ``readinto`` into a fresh array, which the operating system fills while other threads
run (a model loaded beside the one serving requests, ``service/follow.py``). The zip's CRCs are
not checked. Compressed members (``np.savez_compressed``) and arrays of Python objects go
through ``np.load``.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.lib import format as npy_format

#: a zip local file header: signature, versions and flags, sizes, then the name's and the extra
#: field's lengths (the last two unsigned shorts)
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"


def _data_offset(raw, info: zipfile.ZipInfo) -> int:
    """Where the member's stored bytes start in the file."""
    raw.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if fields[0] != _LOCAL_SIGNATURE:
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    return info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]


def _read_member(
    zf: zipfile.ZipFile, raw, info: zipfile.ZipInfo, path: Path, map_from: int | None
) -> np.ndarray | None:
    """The array stored in ``info``, or None where it must go through ``np.load``; mapped
    read-only from the file where it has at least ``map_from`` bytes."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with zf.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(member)
        else:
            return None
        header = member.tell()
    if dtype.hasobject:
        return None
    count = int(np.prod(shape, dtype=np.int64))
    if map_from is not None and count * dtype.itemsize >= map_from and count:
        order: Literal["C", "F"] = "F" if fortran else "C"
        start = _data_offset(raw, info) + header
        return np.memmap(path, dtype=dtype, mode="r", offset=start, shape=shape, order=order)
    out = np.empty(count, dtype=dtype)
    view = out.view(np.uint8).data
    raw.seek(_data_offset(raw, info) + header)
    done = 0
    while done < out.nbytes:
        n = raw.readinto(view[done:])  # unbuffered: one system call, without the lock
        if not n:
            raise zipfile.BadZipFile(f"{info.filename!r} ends before its {out.nbytes} bytes")
        done += n
    return out.reshape(shape, order="F" if fortran else "C")


def read_npz(path: str | Path, map_from: int | None = None) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path`` by name, as ``np.load`` would give them.
    ``map_from``: arrays of at least this many bytes are mapped read-only from the file
    (``np.memmap``) instead of read: no copy at load, pages read as they are first used."""
    path = Path(path)
    fast: dict[str, np.ndarray | None] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb", buffering=0) as raw:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            fast[name] = _read_member(zf, raw, info, path, map_from)
    slow = {}
    if any(arr is None for arr in fast.values()):
        with np.load(path, allow_pickle=False) as z:
            slow = {name: z[name] for name, arr in fast.items() if arr is None}
    return {name: slow[name] if arr is None else arr for name, arr in fast.items()}
