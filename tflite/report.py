"""The report of :func:`keras_bnn.tflite.inspect`: ops, MACs by kind and size against the ideal of a flatbuffer.

MAC categories:
    * ``bitpacked``: binary MACs inside LCE's bitpacked kernels (``LceBconv2d``).
    * ``unpacked_binary``: binary weight x binary activation MACs left in float/int8 ops.
    * ``activation_binary``: matmuls of two binary activations; no bitpacked kernel exists for these.
    * ``other``: every other MAC (float or int8).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["CATEGORIES", "FlatbufferReport", "OpMacs", "SubgraphReport"]

CATEGORIES = ("bitpacked", "unpacked_binary", "activation_binary", "other")


@dataclass(frozen=True)
class OpMacs:
    """MACs of one operator (for WHILE bodies: per iteration)."""

    subgraph: int
    index: int
    op_type: str
    macs: int
    category: str  # one of CATEGORIES


@dataclass(frozen=True)
class SubgraphReport:
    """One subgraph: its role, op counts and MACs by category.

    ``role`` is ``main`` (subgraph 0), ``while_cond``, ``while_body``, ``if_then``, ``if_else``, ``call_once``
    or ``unreferenced``. ``per_iteration`` is True for loop subgraphs and anything they call.
    """

    index: int
    name: str
    role: str
    per_iteration: bool
    op_counts: dict[str, int]
    macs: dict[str, int]

    @property
    def label(self) -> str:
        return f"{self.index} ({self.role})"


@dataclass(frozen=True)
class FlatbufferReport:
    """What a flatbuffer contains, from :func:`keras_bnn.tflite.inspect`.

    Size identity: ``flatbuffer_bytes == ideal_bytes + structure_bytes + non_tensor_buffer_bytes
    + unpacked_binary_excess_bytes + bitpack_padding_bytes``.

    Attributes:
        op_counts: ops per type over all subgraphs (builtin names; custom ops by custom code).
        ops_by_subgraph: the same per subgraph, keyed by ``"<index> (<role>)"``.
        subgraphs: per-subgraph details (role, op counts, MACs).
        op_macs: every op with a MAC count.
        macs: MACs per category (see module docstring), every subgraph counted once.
        bitpacked_share: bitpacked / (bitpacked + unpacked_binary) MACs; None when there is no binary weight x
            binary activation MAC at all.
        flatbuffer_bytes: size of the flatbuffer.
        ideal_bytes: 1 bit per binary weight (rounded up per tensor; plus a float32 scale per output channel for
            an unpacked binary tensor whose scales are not all 1) + every other constant tensor as stored.
        binary_weights: number of binary weights (packed or not).
        structure_bytes: flatbuffer tables, tensor names, shapes, quantization parameters (size - all buffers).
        non_tensor_buffer_bytes: buffers no tensor uses (metadata such as ``min_runtime_version``).
        unpacked_binary_excess_bytes: bytes binary weights take beyond their ideal because they are stored at
            float/int8 width.
        bitpack_padding_bytes: bytes of padding bits, from rounding packed input channels up to 32.
        notes: caveats found while inspecting (for example dynamic shapes).
    """

    op_counts: dict[str, int]
    ops_by_subgraph: dict[str, dict[str, int]]
    subgraphs: tuple[SubgraphReport, ...]
    op_macs: tuple[OpMacs, ...]
    macs: dict[str, int]
    bitpacked_share: float | None
    flatbuffer_bytes: int
    ideal_bytes: int
    binary_weights: int
    structure_bytes: int
    non_tensor_buffer_bytes: int
    unpacked_binary_excess_bytes: int
    bitpack_padding_bytes: int
    notes: tuple[str, ...] = ()

    @property
    def size_ratio(self) -> float:
        """Flatbuffer size / ideal size."""
        return self.flatbuffer_bytes / self.ideal_bytes if self.ideal_bytes else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field plus ``size_ratio``."""
        result = dataclasses.asdict(self)
        result["size_ratio"] = self.size_ratio
        return result

    def __str__(self) -> str:
        lines = [f"Flatbuffer: {self.flatbuffer_bytes:,} bytes; ideal {self.ideal_bytes:,} bytes "
                 f"(ratio {self.size_ratio:.2f}; {self.binary_weights:,} binary weights at 1 bit)",
                 "  extra bytes:",
                 f"    {'flatbuffer structure (tables, names, shapes, quantization)':<62}{self.structure_bytes:>12,}",
                 f"    {'non-tensor buffers (metadata)':<62}{self.non_tensor_buffer_bytes:>12,}",
                 f"    {'binary weights stored unpacked (float/int8, not 1 bit)':<62}"
                 f"{self.unpacked_binary_excess_bytes:>12,}",
                 f"    {'bitpacking padding (input channels rounded up to 32)':<62}{self.bitpack_padding_bytes:>12,}"]
        for sub in self.subgraphs:
            suffix = ", MACs per iteration" if sub.per_iteration else ""
            lines.append(f"Subgraph {sub.label} {sub.name!r}{suffix}")
            lines.extend(f"    {name:<40}{count:>8}" for name, count in sorted(sub.op_counts.items()))
        lines.append("MACs (WHILE subgraphs counted for one iteration):")
        lines.extend(f"    {name:<40}{self.macs[name]:>16,}" for name in CATEGORIES)
        share = "no binary MACs" if self.bitpacked_share is None else f"{self.bitpacked_share:.2%}"
        lines.append(f"Bitpacked share of binary MACs: {share}")
        if self.macs["activation_binary"]:
            lines.append("  (activation x activation binary MACs have no bitpacked kernel and are not in the share)")
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)
