"""What every benchmark result records about the machine it ran on."""

from __future__ import annotations

import os
import pathlib
import platform

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, object]:
    """Core count, CPU model and Python/TensorFlow versions, for the "machine" key of a result file."""
    cpu = platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }
