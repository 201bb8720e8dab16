"""One writer per run dir (issue 11): workers die with their torchrun agent; a second writer fails at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from test_train import make_fake_run, run_params

from silicon_sing import train as T

# enough steps that a worker left running would still be training long after the checks
LONG = {"train.epochs": 1, "train.updates_per_epoch": 20000, "train.batch_size": 2, "train.warmup_steps": 1}


def _train_rows(log: Path) -> int:
    """How many per-step rows the log holds."""
    return sum('"train"' in line for line in log.read_text().splitlines()) if log.exists() else 0


def _wait_for_rows(log: Path, n: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until the job has logged ``n`` training steps."""
    deadline = time.time() + timeout
    while _train_rows(log) < n:
        assert proc.poll() is None, "the job ended before training"
        assert time.time() < deadline, f"no {n} train rows in {log} after {timeout} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_workers_stop_when_their_torchrun_agent_is_killed(tmp_path: Path) -> None:
    params = run_params(make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=2), **LONG)
    log = T.log_path(params, "full")
    cmd = T.torchrun_command(params, "full", 2, tmp_path / "torchrun", resume=False)
    agent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    workers: list[psutil.Process] = []
    try:
        _wait_for_rows(log, 3, agent)
        workers = psutil.Process(agent.pid).children(recursive=True)
        assert len(workers) >= 2
        at_kill = _train_rows(log)
        agent.send_signal(signal.SIGKILL)  # the agent alone, as an OOM killer or a lost node would
        agent.wait(timeout=30)
        gone, alive = psutil.wait_procs(workers, timeout=60)
        assert not alive, f"workers still running 60 s after their agent was killed: {[p.pid for p in alive]}"
        rows = _train_rows(log)
        time.sleep(2)
        assert _train_rows(log) == rows <= at_kill + 5  # they stopped at a step boundary; nobody writes any more
        events = [r["event"] for r in T.read_log(params, "full") if r["kind"] == "event"]
        assert events[-1] == "interrupted", (events, sorted(tmp_path.glob("torchrun/*/*/*/stderr.log")))
        assert (T.category_dir(params, "full") / T.CHECKPOINT).exists()  # StopFlag checkpointed: resume works
    finally:
        for p in workers:
            if p.is_running():
                p.kill()
        if agent.poll() is None:
            agent.kill()
