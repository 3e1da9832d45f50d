"""A build's child process (the docker CLI): it dies with us, it is read in bounded chunks, and
silence is timed.

- Started in its own session, so a kernel interrupt (SIGINT to our process group) does not
  reach it behind our back: a cancel stops it on purpose (:func:`stop`).
- On Linux it gets ``PR_SET_PDEATHSIG(SIGKILL)`` (through ``setpriv --pdeathsig`` when
  util-linux has it, else a small ``preexec_fn``): when the thread that started it ends -- the
  whole process killed with SIGKILL included -- the kernel kills the CLI, its session with the
  engine closes, and the engine abandons the build (nothing runs on, nothing gets tagged).
  The thread that starts it must therefore stay until it has ended: the builders' own thread.
- Its output (stdout and stderr on one pipe, so neither can fill up unread) is read with
  ``os.read`` as it comes, never a whole line at once, and :func:`chunks` raises
  :class:`Silent` when nothing came for ``silence`` seconds of waiting.

>>> with start(["sh", "-c", "echo hi"], dict(os.environ)) as process:
...     b"".join(chunks(process, silence=30)), process.wait()
(b'hi\\n', 0)
"""

from __future__ import annotations

import ctypes
import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_CHUNK = 64 * 1024
_POLL = 0.25
INT_GRACE = 1.0
KILL_GRACE = 5.0


class Silent(Exception):
    """The child printed nothing for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no output for {seconds:g} s")
        self.seconds = seconds


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGKILL the child when its parent goes (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took hold
            os.kill(os.getpid(), kill)

    return preexec


def _setpriv() -> str | None:
    """util-linux's setpriv, which sets the parent-death signal and then execs the command:
    no Python code between fork and exec (a preexec_fn is unsafe in a threaded process)."""
    return shutil.which("setpriv") if sys.platform.startswith("linux") else None


def start(command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` with a stdin pipe and one output pipe (stderr joined to stdout)."""
    log.debug("running %s", shlex.join(command))
    wrapper = _setpriv()
    argv = [wrapper, "--pdeathsig", "KILL", "--", *command] if wrapper else list(command)
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(env), start_new_session=True,
        preexec_fn=None if wrapper else _die_with_parent())


def chunks(process: subprocess.Popen[bytes], silence: float | None) -> Iterator[bytes]:
    """The child's output as it arrives, until EOF; raises :class:`Silent` after ``silence``
    seconds spent waiting without a byte (``None`` or 0: no limit)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    quiet = 0.0  # time spent waiting here since the last byte (not time our consumer took)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            began = time.monotonic()
            if selector.select(_POLL):
                data = os.read(fd, _CHUNK)
                if not data:
                    return
                quiet = 0.0
                yield data
                continue
            quiet += time.monotonic() - began
            if silence and quiet >= silence:
                raise Silent(silence)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, then SIGKILL, to the child's whole process group.

    The 20.10 CLI acknowledges SIGINT but then waits for the running step to end by itself
    (measured: a ``sleep 30`` kept it alive), so the grace period is short; closing its session
    makes the engine kill the RUN process.
    """
    for sig, grace in ((signal.SIGINT, INT_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            log.debug("%s did not stop on %s", process.args, sig.name)


def wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Its exit status; a child that closed its output but lingers is stopped."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s closed its output but did not exit; stopping it", process.args)
        stop(process)
        return process.wait(timeout=KILL_GRACE)
