"""TensorFlow's start-up chatter stays off the terminal; warnings, errors and progress bars do not."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainstats import native_logs
from trainstats.native_logs import filter_native_logs, is_chatter

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop(native_logs.ENV_VAR, None)
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)

# lines TF 2.21 / XLA printed on this CPU-only machine
CHATTER = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796299305.670785   19512 port.cc:153] oneDNN custom operations are on. You may see "
    b"slightly different numerical results.\n",
    b"I0000 00:00:1796299305.671928   19512 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    b"GPU will not be used.\n",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with "
    b"the appropriate compiler flags.\n",
    b"I0000 00:00:1796299189.705913   17159 service.cc:153] XLA service 0x7fce4002f530 initialized for "
    b"platform Host (this does not guarantee that XLA will be used). Devices:\n",
    b"I0000 00:00:1796299190.691600   17159 device_compiler.h:208] Compiled cluster using XLA!  This line is "
    b"logged at most once for the lifetime of the process.\n",
]
CUINIT = (b"E0000 00:00:1796299311.391625   19512 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
          b"error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
KEPT = [
    b"W0000 00:00:1796299182.407406   17080 op_kernel.cc:1858] OP_REQUIRES failed at xla_ops.cc:602 : "
    b"INVALID_ARGUMENT: Input to reshape is a tensor with 8 values\n",
    b"E0000 00:00:1796299182.407497   17080 local_rendezvous.cc:412] Local rendezvous is aborting\n",
    b"Traceback (most recent call last):\n",
    b"/x.py:3: UserWarning: Your input ran out of data\n",
    b"Info: I0000 is not at the start of this line\n",
    b"\rtrain:  50%|#####     | 1/2 [00:01<00:01,  1.0s/epoch]",
]


def test_chatter_lines_are_recognised_and_real_messages_are_not():
    assert all(is_chatter(line) for line in CHATTER)
    assert not any(is_chatter(line) for line in KEPT)
    assert is_chatter(CUINIT) == native_logs._NO_GPU   # with an NVIDIA device node, a failed cuInit matters


_WRITER = r"""
import os, sys, time
from trainstats.native_logs import filter_native_logs
lines = [bytes.fromhex(h) for h in sys.argv[1:]]
with filter_native_logs():
    for i, line in enumerate(lines):
        # native code writes to fd 2 directly; split some lines across writes
        if i % 2:
            os.write(2, line[:7]); time.sleep(0.01); os.write(2, line[7:])
        else:
            os.write(2, line)
    print("python stderr", file=sys.stderr)
os.write(2, b"after\n")
"""


def test_filter_drops_chatter_only_and_keeps_the_order():
    mixed = [CHATTER[0], KEPT[0], CHATTER[1], CHATTER[3], KEPT[1], CHATTER[4], KEPT[3], CHATTER[5], KEPT[5]]
    done = subprocess.run([sys.executable, "-c", _WRITER, *[line.hex() for line in mixed]], env=ENV,
                          capture_output=True, timeout=60)
    want = b"".join(line for line in mixed if not is_chatter(line)) + b"python stderr\nafter\n"
    assert done.returncode == 0 and done.stderr == want
    off = subprocess.run([sys.executable, "-c", _WRITER, *[line.hex() for line in mixed]], capture_output=True,
                         env={**ENV, native_logs.ENV_VAR: "all"}, timeout=60)
    assert off.stderr == b"".join(mixed) + b"python stderr\nafter\n"


def _stderr_lines(text: str) -> set[str]:
    """Lines with timestamps, thread ids and addresses removed, so two processes' lines compare."""
    out = set()
    for line in text.splitlines():
        line = re.sub(r"^([IWEF])\d{4} [\d:.]+ +\d+ ", r"\1 ", line)
        out.add(re.sub(r"0x[0-9a-f]+", "0x", line).strip())
    return out - {""}


_USER_SCRIPT = textwrap.dedent("""
    import sys, tempfile
    import numpy as np, keras
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = np.random.default_rng(1).integers(0, 3, 64)
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(3, name="cls")(inp))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks, data = [], (x, y)
    if sys.argv[1] == "with-callback":
        from trainstats.keras import PerSampleStats, with_ids
        data = with_ids((x, y))
        callbacks = [PerSampleStats(tempfile.mkdtemp() + "/run")]
    print("--- fit", file=sys.stderr, flush=True)
    model.fit(*data, epochs=2, verbose=0, validation_data=data, callbacks=callbacks)
    print("--- done", file=sys.stderr, flush=True)
""")


@pytest.mark.slow
@pytest.mark.tf
def test_the_callback_adds_no_log_line_to_a_users_script():
    pytest.importorskip("tensorflow")

    def fit_lines(mode: str, **env) -> set[str]:
        done = subprocess.run([sys.executable, "-c", _USER_SCRIPT, mode], capture_output=True, text=True,
                              env={**ENV, **env}, timeout=300)
        assert done.returncode == 0, done.stderr
        return _stderr_lines(done.stderr.split("--- fit", 1)[1])

    plain = fit_lines("plain")
    assert fit_lines("with-callback") - plain == set()
    # the callback's XLA-compiled statistics do log without the filter: the check above can fail
    unfiltered = fit_lines("with-callback", **{native_logs.ENV_VAR: "all"}) - plain
    assert any("XLA" in line for line in unfiltered), unfiltered


@pytest.mark.slow
@pytest.mark.tf
def test_the_demo_command_shows_no_tensorflow_chatter(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("matplotlib")
    done = subprocess.run([sys.executable, "-m", "trainstats", "demo", "--quick", "--quiet", "--levels", "0",
                           "--max-functions", "150", "--epochs", "1", "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    native = [line for line in done.stderr.splitlines() if re.match(r"^[IWEF]\d{4} ", line)
              or "absl::InitializeLog" in line or "cuInit" in line]
    assert native == [], native
    assert "report:" in done.stdout
