"""The one torchrun launcher: build the command, run the job, follow its stdout, explain its failure.

Fine-tuning (:func:`silicon_sing.train.launch`) and multi-process generation
(:func:`silicon_sing.generate.launch`) both start ``python -m torch.distributed.run ... -m
silicon_sing.<stage>`` through :func:`run`: rank output is read line by line (a caller may move a
progress bar with it), the agent's stderr goes to a file, and when the caller is interrupted (a
notebook's stop button) the job gets SIGTERM — the ranks checkpoint — and is killed if it does not
end within a minute. A caller that dies without running any cleanup (``kill -9``, the OOM killer)
takes its job with it too: the agent runs under :func:`main`'s small supervisor, which Linux signals
on the caller's death (:func:`parent_death_signal`) and which then stops the agent as the stop
button does, so the ranks checkpoint; a lock the caller passes (``pass_fds``) is held by the job
until it has ended. When a job fails, :func:`failure_tail` names the failing rank and the tail of
its stderr from torchrun's per-rank error files (``--log-dir``), else the tail of the agent's stderr.

Notebook: notebooks/03_finetune.ipynb (fine-tuning), notebooks/04_evaluate.ipynb (generation)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .fsutil import read_json
from .machine import usable_cpus


def command(rendezvous: Sequence[str], nproc: int, module: str, args: Sequence[str],
            log_dir: Path | None = None) -> list[str]:
    """``python -m torch.distributed.run <rendezvous> --nproc_per_node=N [--log-dir D --tee 3] -m <module> <args>``.

    With ``log_dir`` torchrun writes every rank's stdout/stderr and error file there (read by
    :func:`failing_rank_tail`).
    """
    logs = ["--log-dir", str(log_dir), "--tee", "3"] if log_dir is not None else []
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--nproc_per_node={nproc}", *logs,
            "-m", module, *args]


@dataclass
class JobOutcome:
    """How a torchrun job ended."""

    returncode: int
    stderr_tail: str  # the last lines of the agent's stderr
    stdout_tail: str  # the last lines of the job's stdout


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; return whether it is set.

    The setting survives ``exec`` and covers even SIGKILL of the parent. When the parent is already
    gone by the time it takes effect, nobody would send the signal, so it is raised here at once.
    Not available off Linux (returns False).
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
    return True


def guarded(cmd: Sequence[str]) -> list[str]:
    """``cmd`` started under :func:`main`'s supervisor: it gets one SIGTERM when this process dies."""
    return [sys.executable, "-m", "silicon_sing.torchrun", str(os.getpid()), *cmd]


def share_cpu_threads(env: dict[str, str], nproc: int) -> dict[str, str]:
    """``env`` with ``OMP_NUM_THREADS`` = the usable cores shared among ``nproc`` CPU ranks (at least 1), unless it is
    set already (a user's setting wins) or a GPU is visible. One compute thread per core per process: oversubscribed
    cores make every rank slower."""
    import torch  # lazy: this module starts jobs; torch is slow to import

    if not torch.cuda.is_available():
        env.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // nproc)))
    return env


def run(cmd: Sequence[str], env: Mapping[str, str] | None = None, stderr_path: Path | None = None,
        on_line: Callable[[str], None] | None = None, tail_lines: int = 40,
        stop_timeout: float = 60.0, pass_fds: Sequence[int] = ()) -> JobOutcome:
    """Run the job to its end, handing each stdout line to ``on_line``; the agent's stderr goes to ``stderr_path``.

    ``env=None`` inherits this process's environment; without ``stderr_path`` stderr goes to a
    temporary file. Interrupted (any exception, KeyboardInterrupt included), the job is sent SIGTERM,
    given ``stop_timeout`` seconds, killed if still running, and the exception re-raised. If this
    process dies without that cleanup, the job gets the same SIGTERM from Linux (:func:`guarded`).
    ``pass_fds`` stay open in the job (a ``run_lock`` descriptor: the lock outlives a killed caller
    until the job has stopped).

    Linux ties the signal to the *thread* that starts the job: call this from a thread that outlives
    the job (a notebook cell runs on the kernel's main thread).
    """
    with contextlib.ExitStack() as stack:
        if stderr_path is None:
            err_f = stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))
        else:
            err_f = stack.enter_context(open(stderr_path, "w+", encoding="utf-8"))
        proc = subprocess.Popen(guarded(cmd), stdout=subprocess.PIPE, stderr=err_f, text=True,
                                env=dict(env) if env is not None else None, pass_fds=tuple(pass_fds))
        out_tail: deque[str] = deque(maxlen=tail_lines)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out_tail.append(line.rstrip("\n"))
                if on_line is not None:
                    on_line(line)
            rc = proc.wait()
        except BaseException:
            # interrupted: let the job checkpoint (SIGTERM), then re-raise
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=stop_timeout)
            if proc.poll() is None:
                proc.kill()
            raise
        err_f.flush()
        err_f.seek(0)
        err_tail = "\n".join(err_f.read().splitlines()[-tail_lines:])
    return JobOutcome(rc, err_tail, "\n".join(out_tail))


def failing_rank_tail(log_dir: Path, n_lines: int = 40) -> tuple[int | None, str]:
    """The first failing rank (by torchrun's error files) and the tail of its stderr."""
    errors = []
    for err in log_dir.glob("*/attempt_*/*/error.json"):
        try:
            msg = read_json(err)["message"]
            text = msg["message"] if isinstance(msg, dict) else str(msg)
            ts = int(msg["extraInfo"]["timestamp"]) if isinstance(msg, dict) else 0
        except (KeyError, ValueError, TypeError, json.JSONDecodeError):
            text, ts = "", 0
        # a rank that died because its peer vanished is a consequence, not the cause
        secondary = any(s in text for s in ("Connection closed by peer", "Connection reset", "Broken pipe"))
        errors.append((secondary, ts, int(err.parent.name), err.parent))
    if not errors:
        logs = sorted(log_dir.glob("*/attempt_*/*/stderr.log"), key=lambda p: p.stat().st_mtime)
        with_tb = [p for p in logs if "Traceback" in p.read_text(errors="replace")]
        if not with_tb:
            return None, ""
        errors = [(False, 0, int(with_tb[0].parent.name), with_tb[0].parent)]
    _, _, rank, d = sorted(errors)[0]
    stderr = d / "stderr.log"
    lines = stderr.read_text(errors="replace").splitlines() if stderr.exists() else []
    return rank, "\n".join(lines[-n_lines:])


def failure_tail(outcome: JobOutcome, log_dir: Path | None = None,
                 n_lines: int = 40) -> tuple[int | None, str]:
    """What to show for a failed job: the failing rank and its stderr tail from ``log_dir``'s error files,
    else (rank None) the agent's stderr tail, else its stdout tail."""
    if log_dir is not None:
        rank, tail = failing_rank_tail(log_dir, n_lines)
        if tail:
            return rank, tail
    tail = outcome.stderr_tail or outcome.stdout_tail
    return None, "\n".join(tail.splitlines()[-n_lines:])


PARENT_DIED = signal.SIGUSR2  # what Linux sends the supervisor when its caller dies (any signal but the stop's)


def _die_with_supervisor() -> None:
    """In the agent, between fork and exec: SIGKILL when the supervisor itself is killed."""
    parent_death_signal(signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m silicon_sing.torchrun PARENT_PID CMD...``: run ``CMD``; stop it when PARENT_PID dies.

    This process supervises ``CMD`` (the torchrun agent). When the caller dies, however it dies, Linux
    signals this process (:func:`parent_death_signal`) and the agent gets SIGTERM — the stop button's
    signal, which it forwards to the ranks, which checkpoint at the next step boundary. A dying
    multi-threaded caller makes Linux signal once per exiting thread; the supervisor forwards one
    SIGTERM, where the agent itself would re-send SIGTERM to its ranks on each one (and a second
    SIGTERM means "abort now" to them). SIGTERM/SIGINT from the caller are forwarded as SIGTERM;
    if the supervisor is killed, the agent gets SIGKILL (its ranks then checkpoint on their own agent's
    death). Inherited descriptors (a lock) pass to the agent. Exits with the agent's code, 1 without
    starting ``CMD`` when the caller is already gone.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m silicon_sing.torchrun PARENT_PID CMD [ARGS...]", file=sys.stderr)
        return 2
    state = {"parent_died": False, "stop_pending": False}
    agent: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: object) -> None:
        if signum == PARENT_DIED:
            if state["parent_died"]:
                return
            state["parent_died"] = True
        if agent is None:  # not started yet: stop it as soon as it is
            state["stop_pending"] = True
        elif agent.poll() is None:
            agent.send_signal(signal.SIGTERM)

    for s in (signal.SIGTERM, signal.SIGINT, PARENT_DIED):
        signal.signal(s, forward)
    parent_death_signal(PARENT_DIED)
    if os.getppid() != int(args[0]):  # the caller died before the signal was set up: start nothing
        return 1
    # single-threaded here, so a pre-exec hook is safe: the agent dies with this supervisor
    agent = subprocess.Popen(args[1:], close_fds=False, preexec_fn=_die_with_supervisor)
    if state["stop_pending"]:
        agent.send_signal(signal.SIGTERM)
    rc = agent.wait()
    return rc if rc >= 0 else 128 - rc


__all__ = ["command", "JobOutcome", "run", "guarded", "parent_death_signal", "failing_rank_tail", "failure_tail",
           "main"]


if __name__ == "__main__":
    sys.exit(main())
