"""Keep TensorFlow's and XLA's start-up chatter off the terminal; real warnings and errors stay.

TensorFlow's C++ side writes straight to file descriptor 2, bypassing Python. On TF 2.21 several
lines appear whatever ``TF_CPP_MIN_LOG_LEVEL`` says (they come before the variable is read), and
XLA logs INFO lines the first time it compiles in a process::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796299305.670785   19512 port.cc:153] oneDNN custom operations are on. ...
    E0000 00:00:1796299311.391625   19512 cuda_platform.cc:52] failed call to cuInit: ...
    I0000 00:00:1796299189.705913   17159 service.cc:153] XLA service 0x7f... initialized for platform Host

:func:`filter_native_logs` puts a pipe in front of fd 2 and forwards everything except
:func:`is_chatter` lines: native INFO lines (``I`` + ``MMDD``), absl's "All log messages before"
banner, the continuation line of the CPU-feature notice, and the ``cuInit`` failure on a machine
with no NVIDIA device node (``/dev/nvidia*``: no GPU to fail for). Native ``W``/``E``/``F`` lines,
Python warnings, tracebacks and progress bars pass through unchanged and in order.

Used by the ``trainstats`` command for its whole run and by ``PerSampleStats`` around the first
execution of its XLA-compiled statistics (so a user's script shows no line a plain ``fit`` would
not). ``TRAINSTATS_NATIVE_LOGS=all`` turns the filter off.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["filter_native_logs", "is_chatter", "ENV_VAR"]

#: set to ``all`` to see every native log line
ENV_VAR = "TRAINSTATS_NATIVE_LOGS"

_INFO = re.compile(rb"^I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\s\]]+:\d+\] ")
_CUINIT = re.compile(rb"^E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\s\]]+:\d+\] failed call to cuInit: ")
_BANNERS = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
            b"To enable the following instructions: ")
_LINE_END = re.compile(rb"[\r\n]")
_PARTIAL_NATIVE = re.compile(rb"^[IE](?:\d{1,4}(?: .*)?)?$", re.S)
_active = False


def _no_gpu_device() -> bool:
    return not sys.platform.startswith("linux") or not any(Path("/dev").glob("nvidia[0-9]*"))


_NO_GPU = _no_gpu_device()


def is_chatter(line: bytes) -> bool:
    """True for a native log line that says nothing a user can act on (see the module docstring)."""
    line = line.rstrip(b"\r\n")
    if _INFO.match(line) or line.startswith(_BANNERS):
        return True
    return _NO_GPU and bool(_CUINIT.match(line))


def _may_become_chatter(partial: bytes) -> bool:
    """Could this unfinished line still turn out to be chatter? (Then wait for its end.)"""
    if len(partial) > 4096:
        return False
    return bool(_PARTIAL_NATIVE.match(partial)) or any(b.startswith(partial) or partial.startswith(b)
                                                       for b in _BANNERS)


class _Pump(threading.Thread):
    """Reads the pipe in front of fd 2 and writes what ``drop`` keeps to the real stderr, in order.

    Lines end at ``\\n`` or ``\\r`` (progress bars redraw with ``\\r``); an unfinished line is
    forwarded at once unless it may still become chatter."""

    def __init__(self, read_fd: int, out_fd: int, drop: Callable[[bytes], bool]):
        super().__init__(name="trainstats-native-logs", daemon=True)
        self.read_fd, self.out_fd, self.drop = read_fd, out_fd, drop

    def _emit(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.out_fd, data):]
            except OSError:  # the real stderr is gone: nothing left to show it on
                return

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            keep, start = [], 0
            for m in _LINE_END.finditer(pending):
                segment = pending[start:m.end()]
                start = m.end()
                if not self.drop(segment):
                    keep.append(segment)
            pending = pending[start:]
            if pending and not _may_become_chatter(pending):
                keep.append(pending)
                pending = b""
            if keep:
                self._emit(b"".join(keep))
        if pending and not self.drop(pending):
            self._emit(pending)
        os.close(self.read_fd)


@contextlib.contextmanager
def filter_native_logs(drop: Callable[[bytes], bool] = is_chatter) -> Iterator[None]:
    """Within the block, lines written to fd 2 for which ``drop(line)`` is true are not shown.

    Does nothing when ``TRAINSTATS_NATIVE_LOGS=all``, when fd 2 is not open, or when a filter is
    already active in this process. Child processes started inside the block write through it too.
    """
    global _active
    if os.environ.get(ENV_VAR, "").lower() == "all" or _active:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_fd, write_fd = os.pipe()
    _flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = _Pump(read_fd, saved, drop)
    pump.start()
    _active = True
    try:
        yield
    finally:
        _flush()
        os.dup2(saved, 2)   # the pipe's last write end closes: the pump drains it and stops
        pump.join(timeout=10.0)
        if not pump.is_alive():   # else a child still writes through it: leave the pump its fd
            os.close(saved)
        _active = False


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
