#!/usr/bin/env bash
# Prepares an emulated aarch64 Python with LiteRT, for keras_bnn.tflite.emulation (issue #16).
#
# Everything comes from Debian packages and PyPI wheels; nothing is compiled except QEMU's own `insn` example
# plugin (the instruction counter), built from Debian's qemu source package. Idempotent: each step leaves a stamp
# holding its recipe, so a second run only re-checks and re-runs the smoke check (seconds).
#
#   aarch64/setup.sh              # cache in <repo>/.aarch64 (git-ignored)
#   KERAS_BNN_AARCH64_HOME=/some/dir aarch64/setup.sh
#   PYTHON=.venv/bin/python aarch64/setup.sh   # the host Python whose pip downloads the wheels
#
# Cache layout (KERAS_BNN_AARCH64_HOME):
#   sysroot/         Debian bookworm arm64 libc + CPython 3.11 (dpkg -x of the debs below)
#   site-packages/   aarch64 wheels below, unzipped
#   machines/<cpu>/  one board per QEMU CPU model: links to sysroot/ plus its own /proc/cpuinfo and /sys CPU files
#   libinsn.so       QEMU's tests/plugin/insn.c, built against the installed qemu-user's source version
#   READY            written last, after the smoke check passed: versions of everything above
# Needs root for apt-get (only when a system package, the arm64 architecture or deb-src is missing).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOME_DIR=${KERAS_BNN_AARCH64_HOME:-$REPO/.aarch64}
PYTHON=${PYTHON:-python3}

SYSTEM_PACKAGES=(qemu-user-static qemu-user libglib2.0-dev gcc libc6-dev pkg-config xz-utils patch)
ARM64_DEBS=(libc6 libstdc++6 libgcc-s1 zlib1g libexpat1 libffi8 libssl3
            python3.11-minimal libpython3.11-minimal libpython3.11-stdlib)
# Exact aarch64/cp311 wheels: ai-edge-litert 2.3.0, the version of the x86 reference in setup.cfg's test extra
# (its aarch64 wheel is tagged manylinux_2_27), and its dependencies at the versions the x86 venv has.
WHEELS=(ai-edge-litert==2.3.0 numpy==1.26.4 flatbuffers==25.12.19 backports.strenum==1.2.8 tqdm==4.70.1
        typing-extensions==4.16.0 ml_dtypes==0.5.4 protobuf==7.36.2)
# The boards emulated (step 4): QEMU CPU model; what /proc/cpuinfo and /sys say of each of its 4 cores: CPU part,
# variant, revision, max and min kHz, L2 KiB and which cores share it; then the /proc/cpuinfo Features, which are
# the HWCAPs QEMU gives that model (a Raspberry Pi 4's BCM2711 lacks the crypto ones; no kernel here uses them).
MACHINES=("cortex-a72 0xd08 0x0 3 1500000 600000 1024 0-3 fp asimd aes pmull sha1 sha2 crc32 cpuid"
          "cortex-a76 0xd0b 0x4 1 2400000 1500000 512 self fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp
           cpuid asimdrdm lrcpc dcpop asimddp")
APT_GET=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
# apt-get download/source into the cache: as root, apt's _apt sandbox user may not be able to write there.
APT_FETCH=(apt-get -q)
[ "$(id -u)" != 0 ] || APT_FETCH+=(-o APT::Sandbox::User=root)

die() { echo "aarch64/setup.sh: error: $*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR
step() { echo "[aarch64-setup] $* (at ${SECONDS}s)"; }
# stamp_ok DIR RECIPE: the step that fills the folder DIR already ran to its end with exactly this recipe.
stamp_ok() { [ -f "$HOME_DIR/$1/.stamp" ] && [ "$(cat "$HOME_DIR/$1/.stamp")" = "$2" ]; }
stamp_write() { printf '%s' "$2" > "$HOME_DIR/$1/.stamp"; }
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (apt-get); run as root or do it by hand: $2"; }

mkdir -p "$HOME_DIR"
HOME_DIR=$(cd "$HOME_DIR" && pwd)
rm -f "$HOME_DIR/READY"  # written again at the end, once the smoke check passed

# 1. System packages (only those missing).
missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "installing ${missing[*]}" "apt-get install ${missing[*]}"
  step "installing system packages: ${missing[*]}"
  "${APT_GET[@]}" update >/dev/null
  DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
fi
GUEST_PYTHON=$HOME_DIR/sysroot/usr/bin/python3.11
# precompile DIR: write every .pyc once, with the emulated Python itself. Emulated runs are started with
# PYTHONDONTWRITEBYTECODE=1, so a run never finds a different set of cached modules than the run before it
# (which would make instruction counts depend on the order of the runs).
precompile() {
  step "precompiling $(basename "$1")/ to .pyc (emulated, about 20 s)"
  env -i QEMU_LD_PREFIX="$HOME_DIR/sysroot" qemu-aarch64-static "$GUEST_PYTHON" -m compileall -q -j 2 "$1" >/dev/null \
    || die "compileall failed in $1"
}

# The arm64 architecture, deb-src and fresh package lists: only for the steps that download debs or sources.
apt_ready=0
prepare_apt() {
  [ "$apt_ready" = 0 ] || return 0
  local need_update=0
  if ! dpkg --print-foreign-architectures | grep -x arm64 >/dev/null; then
    need_root "adding the arm64 architecture" "dpkg --add-architecture arm64 && apt-get update"
    step "adding the arm64 dpkg architecture"
    dpkg --add-architecture arm64
    need_update=1
  fi
  if ! grep -rqsE --include='*.list' --include='*.sources' '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list \
      /etc/apt/sources.list.d/; then
    need_root "enabling deb-src" "add deb-src lines to the apt sources"
    step "enabling deb-src (/etc/apt/sources.list.d/keras-bnn-deb-src.*)"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then  # deb822: the same archives, as deb-src
      sed -n 's/^Types: deb$/Types: deb-src/; /^Types: deb-src$/,/^$/p' /etc/apt/sources.list.d/debian.sources \
        > /etc/apt/sources.list.d/keras-bnn-deb-src.sources
    elif [ -f /etc/apt/sources.list ]; then  # one-line style
      sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/keras-bnn-deb-src.list
    else
      die "no Debian apt sources found to derive deb-src from"
    fi
    need_update=1
  fi
  if [ "$need_update" = 1 ] || ! apt-cache show libc6:arm64 >/dev/null 2>&1 \
      || ! apt-cache showsrc qemu 2>/dev/null | grep '^Package: qemu$' >/dev/null; then
    need_root "apt-get update" "apt-get update"
    step "apt-get update"
    "${APT_GET[@]}" update >/dev/null
  fi
  apt_ready=1
}

# 2. The arm64 sysroot: Debian's aarch64 CPython 3.11 and the libraries it and the wheels load.
if ! stamp_ok sysroot "${ARM64_DEBS[*]}"; then
  prepare_apt
  step "downloading and unpacking ${#ARM64_DEBS[@]} arm64 debs into sysroot/"
  rm -rf "$HOME_DIR/sysroot" "$HOME_DIR/debs"
  mkdir -p "$HOME_DIR/sysroot" "$HOME_DIR/debs"
  (cd "$HOME_DIR/debs" && "${APT_FETCH[@]}" download "${ARM64_DEBS[@]/%/:arm64}" >/dev/null)
  for deb in "$HOME_DIR"/debs/*.deb; do
    dpkg -x "$deb" "$HOME_DIR/sysroot"
    dpkg-deb --showformat='${Package}=${Version}\n' -W "$deb"
  done > "$HOME_DIR/sysroot.versions"
  rm -rf "$HOME_DIR/debs"
  precompile "$HOME_DIR/sysroot/usr/lib/python3.11"
  stamp_write sysroot "${ARM64_DEBS[*]}"
fi
[ -x "$GUEST_PYTHON" ] || die "sysroot has no usr/bin/python3.11"

# 3. The aarch64 wheels, unzipped (a wheel is a zip of its site-packages files).
if ! stamp_ok site-packages "${WHEELS[*]}"; then
  step "downloading aarch64 wheels: ${WHEELS[*]}"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "'$PYTHON -m pip' does not run: set PYTHON to a Python with pip"
  rm -rf "$HOME_DIR/site-packages" "$HOME_DIR/wheels"
  # pip matches a manylinux_2_X wheel only when that tag is named: manylinux2014_aarch64 alone finds none of
  # ai-edge-litert's (which then looks as if only 1.4.0 existed for aarch64).
  "$PYTHON" -m pip download -qq --no-deps --only-binary=:all: --platform manylinux_2_27_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --platform any --python-version 3.11 \
    --implementation cp --abi cp311 --abi abi3 --abi none -d "$HOME_DIR/wheels" "${WHEELS[@]}"
  mkdir -p "$HOME_DIR/site-packages"
  "$PYTHON" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
    "$HOME_DIR/site-packages" "$HOME_DIR"/wheels/*.whl
  rm -rf "$HOME_DIR/wheels"
  precompile "$HOME_DIR/site-packages"
  stamp_write site-packages "${WHEELS[*]}"
fi

# 4. The boards. QEMU user mode shows the program the host's /proc and /sys, except where the QEMU_LD_PREFIX folder
# holds a file of the same path. An x86 /proc/cpuinfo makes the cpuinfo library in LiteRT 2.x die of SIGSEGV, and
# the host's CPU count and cache sizes would steer kernel choices; so each board's folder has the files cpuinfo
# reads (found with QEMU_STRACE=1), describing 4 cores of that CPU, and links to sysroot/ for everything else.
write_machine() {  # NAME PART VARIANT REVISION MAX_KHZ MIN_KHZ L2_KIB L2_SHARED FEATURES...
  local name=$1 part=$2 variant=$3 revision=$4 max_khz=$5 min_khz=$6 l2_kib=$7 l2_shared=$8 cpu entry
  shift 8
  local root=$HOME_DIR/machines/$name cpus=$HOME_DIR/machines/$name/sys/devices/system/cpu
  rm -rf "$root"
  mkdir -p "$root/proc" "$cpus"
  for entry in "$HOME_DIR"/sysroot/*; do ln -s "../../sysroot/${entry##*/}" "$root/${entry##*/}"; done
  for cpu in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\n' \
      "$cpu" "$*"
    printf 'CPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
    mkdir -p "$cpus/cpu$cpu/cpufreq" "$cpus/cpu$cpu/topology" "$cpus/cpu$cpu/cache/index2"
    echo "$max_khz" > "$cpus/cpu$cpu/cpufreq/cpuinfo_max_freq"
    echo "$min_khz" > "$cpus/cpu$cpu/cpufreq/cpuinfo_min_freq"
    echo 0 > "$cpus/cpu$cpu/topology/physical_package_id"
    echo 0-3 > "$cpus/cpu$cpu/topology/cluster_cpus_list"
    echo 2 > "$cpus/cpu$cpu/cache/index2/level"
    echo "${l2_kib}K" > "$cpus/cpu$cpu/cache/index2/size"
    [ "$l2_shared" = self ] && echo "$cpu" > "$cpus/cpu$cpu/cache/index2/shared_cpu_list" \
      || echo "$l2_shared" > "$cpus/cpu$cpu/cache/index2/shared_cpu_list"
  done > "$root/proc/cpuinfo"
  echo 3 > "$cpus/kernel_max"
  for entry in possible present online; do echo 0-3 > "$cpus/$entry"; done
}
for machine in "${MACHINES[@]}"; do
  name=${machine%% *}
  if ! stamp_ok "machines/$name" "$machine | ${ARM64_DEBS[*]}"; then
    step "describing the $name board in machines/$name/"
    write_machine $machine
    stamp_write "machines/$name" "$machine | ${ARM64_DEBS[*]}"
  fi
done

# 5. The instruction-counting plugin: QEMU's tests/plugin/insn.c from the source of the installed qemu-user.
qemu_version=$(dpkg-query -W -f='${source:Version}' qemu-user)
if ! stamp_ok plugin-src "$qemu_version" || [ ! -f "$HOME_DIR/libinsn.so" ]; then
  prepare_apt
  step "building libinsn.so from Debian's qemu $qemu_version source"
  rm -rf "$HOME_DIR/plugin-src"
  mkdir -p "$HOME_DIR/plugin-src"
  (cd "$HOME_DIR/plugin-src" && "${APT_FETCH[@]}" source --download-only "qemu=$qemu_version" >/dev/null)
  orig=$(ls "$HOME_DIR"/plugin-src/qemu_*.orig.tar.*)
  tar -xf "$orig" -C "$HOME_DIR/plugin-src" --strip-components=1 --wildcards \
    '*/tests/plugin/insn.c' '*/include/qemu/qemu-plugin.h'
  # Debian's patches, if any touch these two files, are applied too.
  tar -xf "$HOME_DIR"/plugin-src/qemu_*.debian.tar.* -C "$HOME_DIR/plugin-src" debian/patches
  if [ -f "$HOME_DIR/plugin-src/debian/patches/series" ]; then
    while read -r patch _; do
      case "$patch" in ''|'#'*) continue ;; esac
      if grep -qE '^\+\+\+ [^ ]*/(tests/plugin/insn\.c|include/qemu/qemu-plugin\.h)' \
          "$HOME_DIR/plugin-src/debian/patches/$patch"; then
        step "applying Debian patch $patch"
        patch -s -d "$HOME_DIR/plugin-src" -p1 < "$HOME_DIR/plugin-src/debian/patches/$patch"
      fi
    done < "$HOME_DIR/plugin-src/debian/patches/series"
  fi
  gcc -O2 -shared -fPIC -Wall -o "$HOME_DIR/libinsn.so" "$HOME_DIR/plugin-src/tests/plugin/insn.c" \
    -I "$HOME_DIR/plugin-src/include/qemu" $(pkg-config --cflags --libs glib-2.0)
  rm -f "$HOME_DIR"/plugin-src/qemu_*.tar.* "$HOME_DIR"/plugin-src/qemu_*.dsc
  rm -rf "$HOME_DIR/plugin-src/debian"
  stamp_write plugin-src "$qemu_version"
fi

# 6. Smoke check, on each board: LiteRT runs a one-op model (RELU) built here with its own flatbuffer schema; then
# the plugin counts the instructions of that run under the dynamic qemu-aarch64.
SMOKE=$(cat <<'PY'
import platform, flatbuffers, numpy as np
from importlib.metadata import version
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

def tensor(name):
    t = schema.TensorT()
    t.shape, t.type, t.buffer, t.name = [1, 4], schema.TensorType.FLOAT32, 0, name
    return t

code = schema.OperatorCodeT()
code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
op = schema.OperatorT()
op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
graph = schema.SubGraphT()
graph.tensors, graph.inputs, graph.outputs, graph.operators = [tensor("x"), tensor("y")], [0], [1], [op]
model = schema.ModelT()
model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
builder = flatbuffers.Builder(0)
builder.Finish(model.Pack(builder), b"TFL3")
interpreter = Interpreter(model_content=bytes(builder.Output()))
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([[-2, -0.5, 0.5, 2]], np.float32))
interpreter.invoke()
y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
assert y.tolist() == [[0, 0, 0.5, 2]], y
print(platform.machine(), platform.python_version(), "numpy", np.__version__, "ai-edge-litert",
      version("ai-edge-litert"))
PY
)
for machine in "${MACHINES[@]}"; do
  name=${machine%% *}
  step "smoke check on $name"
  guest_env=(env -i PATH=/usr/bin:/bin PYTHONPATH="$HOME_DIR/site-packages" PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
             OPENBLAS_NUM_THREADS=1 QEMU_LD_PREFIX="$HOME_DIR/machines/$name")
  report=$("${guest_env[@]}" qemu-aarch64-static -cpu "$name" "$GUEST_PYTHON" -c "$SMOKE" 2>&1) \
    || die "on $name, the emulated Python could not run a RELU model in LiteRT: ${report##*$'\n'}"
  report=${report##*$'\n'}  # the last line; LiteRT logs before it
  case "$report" in
    aarch64*) ;;
    *) die "on $name, the emulated Python reports platform.machine() ${report%% *}, not aarch64" ;;
  esac
done
log=$(mktemp)
"${guest_env[@]}" qemu-aarch64 -cpu "$name" -plugin "$HOME_DIR/libinsn.so,inline=on" -d plugin -D "$log" \
  "$GUEST_PYTHON" -c "$SMOKE" >/dev/null 2>&1 || { rm -f "$log"; die "qemu-aarch64 with the insn plugin failed"; }
insns=$(sed -n 's/^insns: //p' "$log"); rm -f "$log"
[ -n "$insns" ] && [ "$insns" -gt 0 ] || die "the insn plugin printed no instruction count"
{
  echo "$report"
  echo "qemu $(qemu-aarch64 --version | head -n 1)"
  echo "boards ${MACHINES[*]%% *}"
  echo "debs $(paste -sd" " "$HOME_DIR/sysroot.versions")"
  echo "wheels ${WHEELS[*]}"
  echo "plugin insn.c from qemu $qemu_version (smoke check on $name: $insns instructions)"
} > "$HOME_DIR/READY"
step "ready: $report on ${MACHINES[*]%% *}; the plugin counted $insns instructions; cache $HOME_DIR"
