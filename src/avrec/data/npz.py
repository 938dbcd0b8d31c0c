"""Reading the arrays of an ``.npz`` file as ``np.savez`` writes it, quickly and without
holding the interpreter lock while the bytes are copied; writing one with arrays that are
never whole in memory (:func:`write_npz`).

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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Streamed:
    """A C-order array written a block of rows at a time: ``blocks()`` yields consecutive
    blocks of rows (each may reuse the previous one's buffer), ``shape[0]`` rows in all."""

    shape: tuple[int, ...]
    dtype: np.dtype
    blocks: Callable[[], Iterator[np.ndarray]]


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray | Streamed]) -> None:
    """Write ``arrays`` as ``np.savez`` does (stored members, ``.npy`` inside, readable by
    ``np.load`` and :func:`read_npz`), a :class:`Streamed` array block by block as its blocks
    come, so a computed array goes to the file without a whole copy in memory."""
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                if isinstance(value, Streamed):
                    _write_streamed(member, value)
                else:
                    npy_format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _write_streamed(member, value: Streamed) -> None:
    header = {"descr": npy_format.dtype_to_descr(np.dtype(value.dtype)),
              "fortran_order": False, "shape": tuple(value.shape)}  # fmt: skip
    npy_format.write_array_header_1_0(member, header)
    rows = 0
    for block in value.blocks():
        if block.dtype != value.dtype or block.shape[1:] != tuple(value.shape[1:]):
            raise ValueError(f"a block of {block.dtype} {block.shape} in {value.shape}")
        member.write(np.ascontiguousarray(block).reshape(-1).view(np.uint8).data)
        rows += block.shape[0]
    if rows != value.shape[0]:
        raise ValueError(f"streamed {rows} rows of {value.shape[0]}")
