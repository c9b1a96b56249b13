"""keras_bnn.tflite.emulation: run flatbuffers in aarch64 LiteRT under QEMU, and count the instructions they take.

`make aarch64-setup` (aarch64/setup.sh) prepares, in `.aarch64/` or `$KERAS_BNN_AARCH64_HOME`, Debian's arm64
CPython 3.11 with the aarch64 wheels of ai-edge-litert 2.3.0 (the x86 reference's version) and numpy, two boards
(QEMU CPU models `cortex-a72`, as in a Raspberry Pi 4, and `cortex-a76`, as in a Raspberry Pi 5, each with the
/proc/cpuinfo and /sys CPU files LiteRT's cpuinfo reads), and QEMU's `insn` plugin. `Aarch64(cpu=...)` then:

- `run(flatbuffer, inputs)`, `run_samples(flatbuffer, samples)`: the outputs of LiteRT's aarch64 kernels
  (XNNPACK, or LiteRT's builtin kernels) under `qemu-aarch64-static -cpu <cpu>`. Data crosses as files (.tflite,
  .npz) in a temporary folder, never as pickles.
- `instructions_per_inference(flatbuffer, inputs)`: aarch64 instructions per `invoke`, counted by the plugin under
  the dynamic `qemu-aarch64` (the static one has no plugin support): the count after one warm-up invoke and n
  more, less the count after the warm-up alone, over n. A proxy for speed: no caches, no stalls, a NEON
  instruction counts one; emulated wall time means nothing. The CPU model matters: it decides which kernels
  (e.g. int8 dot-product ones on cortex-a76) LiteRT picks.
- `run_program(argv)` and `instructions_per_call(argv_for, calls)`: the same for any aarch64 program.

Importing this module does not import LCE.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> from keras_bnn.tflite.emulation import Aarch64
    >>> model = tf.keras.Sequential([tf.keras.Input((4,), batch_size=1), tf.keras.layers.Dense(2)])
    >>> flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    >>> arm = Aarch64()  # raises NotSetUp, naming `make aarch64-setup`, if the cache is missing
    >>> [y] = arm.run(flatbuffer, [np.ones((1, 4), np.float32)])
    >>> y.shape
    (1, 2)
    >>> arm.instructions_per_inference(flatbuffer, [np.ones((1, 4), np.float32)], invokes=10) > 0
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from keras_bnn.tflite.flatbuffer import read_flatbuffer

HOME_VARIABLE = "KERAS_BNN_AARCH64_HOME"
SETUP_COMMAND = "make aarch64-setup"
CPUS = ("cortex-a72", "cortex-a76")  # the boards setup.sh describes (its MACHINES)
_RUNNER = pathlib.Path(__file__).with_name("_aarch64_runner.py")
_RUNNER_REFUSED = 3  # _aarch64_runner.py's exit status when LiteRT refuses the flatbuffer or the inputs
_RAN = "ran"  # what _aarch64_runner.py prints once the first invoke returned
_INSNS = re.compile(rb"^insns: (\d+)$", re.MULTILINE)
# The emulated Python: its wheels on the path, the same hash seed and no .pyc writes in every run (setup.sh wrote
# them all once), and numpy's OpenBLAS without its thread pool (idle threads spin: +-3 M instructions a run), so
# that two runs of one program execute nearly the same instructions (measured: within a few thousand).
_PYTHON_ENV = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1"}


class NotSetUp(RuntimeError):
    """The emulation cache or QEMU is missing or incomplete: `make aarch64-setup` prepares them."""


class EmulationError(RuntimeError):
    """An emulated program failed; `result` holds its exit status and output."""

    def __init__(self, message: str, result: ProgramResult):
        super().__init__(message)
        self.result = result


@dataclasses.dataclass(frozen=True)
class ProgramResult:
    """One emulated run: `instructions` is the guest instructions executed (all threads), when counted."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    instructions: int | None = None


def default_home() -> pathlib.Path:
    """`$KERAS_BNN_AARCH64_HOME`, else `.aarch64/` in the repository holding this package (an editable install)."""
    if os.environ.get(HOME_VARIABLE):
        return pathlib.Path(os.environ[HOME_VARIABLE])
    return pathlib.Path(__file__).resolve().parents[1] / ".aarch64"


class Aarch64:
    """An emulated aarch64 board of `make aarch64-setup`: Debian arm64 CPython 3.11 + LiteRT 2.3.0 under QEMU.

    Args:
        home: the cache folder setup.sh filled; default `default_home()`.
        cpu: the QEMU CPU model, one of `CPUS`: `cortex-a72` (ARMv8.0 + crc/crypto: a Raspberry Pi 4) or
            `cortex-a76` (ARMv8.2 with dot product and fp16: a Raspberry Pi 5).

    Raises:
        ValueError: an unknown `cpu`.
        NotSetUp: (from every method) the cache is incomplete or QEMU is not installed.

    Example:
        >>> from keras_bnn.tflite.emulation import Aarch64
        >>> arm = Aarch64()
        >>> arm.run_program([str(arm.python), "-c", "import platform; print(platform.machine())"]).stdout
        'aarch64\\n'
    """

    def __init__(self, home: str | os.PathLike | None = None, cpu: str = "cortex-a72"):
        if cpu not in CPUS:
            raise ValueError(f"cpu must be one of {CPUS}, got {cpu!r}")
        self.cpu = cpu
        self.home = pathlib.Path(home if home is not None else default_home()).absolute()
        self.sysroot = self.home / "sysroot"
        self.machine = self.home / "machines" / cpu  # QEMU_LD_PREFIX: the sysroot, with this board's /proc, /sys
        self.site_packages = self.home / "site-packages"
        self.plugin = self.home / "libinsn.so"
        self.python = self.sysroot / "usr" / "bin" / "python3.11"

    def check(self) -> None:
        """Raise NotSetUp, naming what is missing and `make aarch64-setup`, unless everything is in place."""
        missing = [tool for tool in ("qemu-aarch64-static", "qemu-aarch64") if shutil.which(tool) is None]
        needed = [self.home / "READY", self.python, self.site_packages / "numpy",
                  self.site_packages / "ai_edge_litert", self.machine / "proc" / "cpuinfo", self.plugin]
        missing += [str(path) for path in needed if not path.exists()]
        if missing:
            raise NotSetUp(
                f"the emulated aarch64 set-up in {self.home} is incomplete, missing: {', '.join(missing)}. "
                f"Run `{SETUP_COMMAND}` in the repository (or `{HOME_VARIABLE}={self.home} aarch64/setup.sh`; "
                f"{HOME_VARIABLE} chooses the folder).")

    def run_program(self, argv: Sequence[str | os.PathLike], *, count_instructions: bool = False,
                    env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
                    timeout: float = 600.0, check: bool = True) -> ProgramResult:
        """Run an aarch64 program (a host path to its executable, then its arguments) under QEMU user mode.

        Its shared libraries come from the sysroot, and /proc/cpuinfo and /sys CPU files from the board's folder
        (QEMU_LD_PREFIX); every other file is the host's.

        Args:
            argv: the program and its arguments.
            count_instructions: run under `qemu-aarch64` with the insn plugin and fill `instructions`.
            env: the program's environment, on top of PATH, LANG and QEMU_LD_PREFIX (nothing else is inherited).
            cwd: its working folder.
            timeout: seconds before it is killed (subprocess.TimeoutExpired).
            check: raise EmulationError when it exits non-zero.

        Returns:
            Its exit status, decoded stdout and stderr, and the instruction count when asked for.

        Example:
            >>> arm = Aarch64()
            >>> arm.run_program([str(arm.python), "-c", "pass"], count_instructions=True).instructions > 10**6
            True
        """
        self.check()
        argv = tuple(os.fspath(arg) for arg in argv)
        full_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {}), "QEMU_LD_PREFIX": str(self.machine)}
        with tempfile.TemporaryDirectory(prefix="keras-bnn-qemu-") as folder:
            log = pathlib.Path(folder, "plugin.log")
            if count_instructions:
                command = ["qemu-aarch64", "-cpu", self.cpu, "-plugin", f"{self.plugin},inline=on", "-d", "plugin",
                           "-D", str(log)]
            else:
                command = ["qemu-aarch64-static", "-cpu", self.cpu]
            completed = subprocess.run([*command, *argv], env=full_env, cwd=cwd, capture_output=True,
                                       timeout=timeout)
            counts = _INSNS.findall(log.read_bytes()) if count_instructions and log.exists() else []
        result = ProgramResult(argv, completed.returncode, completed.stdout.decode(errors="replace"),
                               completed.stderr.decode(errors="replace"), int(counts[-1]) if counts else None)
        if check and result.returncode != 0:
            raise EmulationError(f"{argv[0]} exited with status {result.returncode} under QEMU: "
                                 f"{_tail(result.stderr)}", result)
        if check and count_instructions and result.instructions is None:
            raise EmulationError(f"the insn plugin reported no instruction count for {argv[0]}", result)
        return result

    def instructions_per_call(self, argv_for: Callable[[int], Sequence[str | os.PathLike]], calls: int,
                              **run_options) -> float:
        """Instructions per call of a program that makes a warm-up call and then `k` calls, when run as `argv_for(k)`.

        Counts `argv_for(0)` and `argv_for(calls)` and returns the difference over `calls`, so start-up, loading
        and the warm-up cancel out.

        Args:
            argv_for: the program's argv for k calls after the warm-up.
            calls: n, at least 1.
            **run_options: `env`, `cwd`, `timeout` of `run_program`.

        Example:
            >>> arm = Aarch64()
            >>> loop = lambda k: [arm.python, "-c", f"for _ in range(1 + {k}): sum(range(1000))"]
            >>> 1000 < arm.instructions_per_call(loop, 10, env={"PYTHONHASHSEED": "0"})
            True
        """
        if calls < 1:
            raise ValueError(f"calls must be at least 1, got {calls}")
        base, full = (self.run_program(argv_for(k), count_instructions=True, **run_options).instructions
                      for k in (0, calls))
        return (full - base) / calls

    def run(self, flatbuffer: bytes, inputs: Sequence[np.ndarray], *, num_threads: int = 1,
            use_xnnpack: bool = True, timeout: float = 600.0) -> list[np.ndarray]:
        """The outputs of `flatbuffer` on `inputs` in aarch64 LiteRT (the order of its input/output details).

        Args:
            flatbuffer: a TFLite flatbuffer (builtin ops only: LiteRT knows no LCE custom ops).
            inputs: one array per model input, with its exact dtype and shape.
            num_threads: LiteRT's thread count.
            use_xnnpack: True for LiteRT's default XNNPACK delegate, False for its builtin kernels only.
            timeout: seconds for the emulated run.

        Raises:
            ValueError: not a TFLite flatbuffer, or LiteRT refused it or the inputs (count, dtype, shape), or
                died while loading it or running it the first time.

        Example:
            >>> import numpy as np, tensorflow as tf
            >>> model = tf.keras.Sequential([tf.keras.Input((3,), batch_size=1), tf.keras.layers.ReLU()])
            >>> flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
            >>> Aarch64().run(flatbuffer, [np.array([[-1, 0, 2]], np.float32)])[0]
            array([[0., 0., 2.]], dtype=float32)
        """
        return self.run_samples(flatbuffer, [inputs], num_threads=num_threads, use_xnnpack=use_xnnpack,
                                timeout=timeout)[0]

    def run_samples(self, flatbuffer: bytes, samples: Sequence[Sequence[np.ndarray]], *, num_threads: int = 1,
                    use_xnnpack: bool = True, timeout: float = 600.0) -> list[list[np.ndarray]]:
        """`run` on each sample in turn (one list of inputs each) in one emulated process, which saves start-ups.

        The interpreter is loaded once, so a model with variable tensors carries them from sample to sample.

        Example:
            >>> import numpy as np, tensorflow as tf
            >>> model = tf.keras.Sequential([tf.keras.Input((1,), batch_size=1), tf.keras.layers.ReLU()])
            >>> flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
            >>> Aarch64().run_samples(flatbuffer, [[np.full((1, 1), v, np.float32)] for v in (-1, 2)])
            [[array([[0.]], dtype=float32)], [array([[2.]], dtype=float32)]]
        """
        with self._staged(flatbuffer, samples) as folder:
            self.run_program(self._runner_argv(folder, 1, num_threads, use_xnnpack), env=self._python_env(),
                             timeout=timeout)
            with np.load(folder / "outputs.npz", allow_pickle=False) as data:
                count = len(data.files) // len(samples)
                return [[data[f"s{j}_output_{i}"] for i in range(count)] for j in range(len(samples))]

    def instructions_per_inference(self, flatbuffer: bytes, inputs: Sequence[np.ndarray], *, invokes: int = 10,
                                   num_threads: int = 1, use_xnnpack: bool = True,
                                   timeout: float = 600.0) -> float:
        """aarch64 instructions per `invoke` of `flatbuffer` on `inputs` in LiteRT, after one warm-up invoke.

        Args:
            flatbuffer, inputs, num_threads, use_xnnpack, timeout: as for `run` (timeout is per emulated run).
            invokes: n, the invokes counted after the warm-up (two runs: warm-up only, warm-up + n).

        Raises:
            ValueError: as for `run`, or `invokes` < 1.

        Example:
            >>> import numpy as np, tensorflow as tf
            >>> model = tf.keras.Sequential([tf.keras.Input((64,), batch_size=1), tf.keras.layers.Dense(64)])
            >>> flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
            >>> 64 * 64 / 4 < Aarch64().instructions_per_inference(flatbuffer, [np.ones((1, 64), np.float32)])
            True
        """
        with self._staged(flatbuffer, [inputs]) as folder:
            return self.instructions_per_call(
                lambda calls: self._runner_argv(folder, 1 + calls, num_threads, use_xnnpack), invokes,
                env=self._python_env(), timeout=timeout)

    def _python_env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.site_packages), **_PYTHON_ENV}

    def _runner_argv(self, folder: pathlib.Path, invokes: int, num_threads: int, use_xnnpack: bool) -> list[str]:
        argv = [str(self.python), str(_RUNNER), str(folder / "model.tflite"), str(folder / "inputs.npz"),
                str(folder / "outputs.npz"), "--num-threads", str(num_threads), "--invokes", str(invokes)]
        return argv + ([] if use_xnnpack else ["--no-xnnpack"])

    @contextlib.contextmanager
    def _staged(self, flatbuffer: bytes, samples: Sequence[Sequence[np.ndarray]]) -> Iterator[pathlib.Path]:
        """A temporary folder holding model.tflite and inputs.npz; LiteRT's refusals come out as ValueError."""
        self.check()  # a missing set-up is named first
        data = read_flatbuffer(flatbuffer).data  # bad bytes: a ValueError here, before any emulated process
        if not samples:
            raise ValueError("no samples to run")
        if any(isinstance(inputs, np.ndarray) for inputs in samples):
            raise TypeError("inputs must be a list with one array per model input, not an array")
        with tempfile.TemporaryDirectory(prefix="keras-bnn-aarch64-") as name:
            folder = pathlib.Path(name)
            (folder / "model.tflite").write_bytes(data)
            np.savez(folder / "inputs.npz", **{f"s{j}_input_{i}": np.asarray(x)
                                               for j, inputs in enumerate(samples) for i, x in enumerate(inputs)})
            try:
                yield folder
            except EmulationError as error:
                result = error.result
                if result.returncode == _RUNNER_REFUSED:
                    raise ValueError(f"LiteRT (aarch64) refused the flatbuffer or inputs: {_tail(result.stderr)}") \
                        from None
                if result.returncode < 0 and _RAN not in result.stdout.split():
                    raise ValueError(f"LiteRT (aarch64) died of signal {-result.returncode} while loading the "
                                     f"flatbuffer or invoking it the first time: {_tail(result.stderr)}") from None
                raise


def _tail(text: str, lines: int = 5) -> str:
    """The last lines of a program's stderr, on one line, without LiteRT's "INFO: Created ... delegate" notes."""
    text = re.sub(r"INFO: [^\n]*", "", text)
    kept = [line for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"
