"""The one torchrun launcher: build the command, run the job, follow its stdout, explain its failure.

Fine-tuning (:func:`silicon_sing.train.launch`) and multi-process generation
(:func:`silicon_sing.generate.launch`) both start ``python -m torch.distributed.run ... -m
silicon_sing.<stage>`` through :func:`run`: rank output is read line by line (a caller may move a
progress bar with it), the agent's stderr goes to a file, and when the caller is interrupted (a
notebook's stop button) the job gets SIGTERM — the ranks checkpoint — and is killed if it does not
end within a minute. When a job fails, :func:`failure_tail` names the failing rank and the tail of
its stderr from torchrun's per-rank error files (``--log-dir``), else the tail of the agent's stderr.

Notebook: notebooks/03_finetune.ipynb (fine-tuning), notebooks/04_evaluate.ipynb (generation)
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .fsutil import read_json


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


def run(cmd: Sequence[str], env: Mapping[str, str] | None = None, stderr_path: Path | None = None,
        on_line: Callable[[str], None] | None = None, tail_lines: int = 40,
        stop_timeout: float = 60.0) -> JobOutcome:
    """Run the job to its end, handing each stdout line to ``on_line``; the agent's stderr goes to ``stderr_path``.

    ``env=None`` inherits this process's environment; without ``stderr_path`` stderr goes to a
    temporary file. Interrupted (any exception, KeyboardInterrupt included), the job is sent SIGTERM,
    given ``stop_timeout`` seconds, killed if still running, and the exception re-raised.
    """
    with contextlib.ExitStack() as stack:
        if stderr_path is None:
            err_f = stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))
        else:
            err_f = stack.enter_context(open(stderr_path, "w+", encoding="utf-8"))
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=err_f, text=True,
                                env=dict(env) if env is not None else None)
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


__all__ = ["command", "JobOutcome", "run", "failing_rank_tail", "failure_tail"]
