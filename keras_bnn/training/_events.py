"""A TensorBoard scalar event file, written in pure Python (no TensorFlow, no TensorBoard, no protobuf package).

An event file is a sequence of TFRecords (length, masked CRC-32C of the length, data, masked CRC-32C of the
data), each holding one serialized ``tensorflow.Event`` protocol buffer. The few fields needed are encoded by
hand: ``Event{wall_time=1 (double), step=2 (int64), file_version=3 (string), summary=5}``,
``Summary{value=1 (repeated)}``, ``Summary.Value{tag=1 (string), simple_value=2 (float)}``. TensorBoard shows
``simple_value`` summaries in its scalars dashboard.
"""

from __future__ import annotations

import os
import pathlib
import socket
import struct
import time

__all__ = ["ScalarEventWriter", "crc32c"]


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`.

    Example:
        >>> hex(crc32c(b"123456789"))  # the standard check value
        '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, *, file_version: str | None = None, summary: bytes | None = None) -> bytes:
    data = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        data += _length_delimited(3, file_version.encode())
    if summary is not None:
        data += _length_delimited(5, summary)
    return data


def _scalar_summary(tag: str, value: float) -> bytes:
    entry = _length_delimited(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(value))
    return _length_delimited(1, entry)


class ScalarEventWriter:
    """Appends scalar summaries to a new ``events.out.tfevents.*`` file in `log_dir` (as TensorBoard reads).

    Example:
        >>> import tempfile
        >>> writer = ScalarEventWriter(tempfile.mkdtemp())
        >>> writer.scalar("layer/flip_ratio", 0.25, step=0)
        >>> writer.close()
        >>> writer.path.name.startswith("events.out.tfevents.")
        True
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        folder = pathlib.Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.keras_bnn"
        self.path = folder / name
        self._file = open(self.path, "ab")  # noqa: SIM115  (closed by close())
        self._record(_event(0, time.time(), file_version="brain.Event:2"))

    def _record(self, data: bytes) -> None:
        length = struct.pack("<Q", len(data))
        self._file.write(length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data)))

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Write `value` under `tag` at `step`."""
        self._record(_event(step, time.time(), summary=_scalar_summary(tag, value)))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
