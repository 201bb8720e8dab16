"""One writer per run dir (issue 11): workers die with their torchrun agent; a second writer fails at once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from silicon_sing import train as T
from silicon_sing.fsutil import RunLocked, run_lock
from test_train import make_fake_run, run_params

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
    log = params.run.train_log("full")
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
        assert (params.run.category_dir("full") / T.CHECKPOINT).exists()  # StopFlag checkpointed: resume works
    finally:
        for p in workers:
            if p.is_running():
                p.kill()
        if agent.poll() is None:
            agent.kill()


# --------------------------------------------------------------------------- one writer per run dir


def test_run_lock_refuses_a_second_holder_naming_the_first_and_frees_on_exit(tmp_path: Path) -> None:
    lock = tmp_path / "run" / ".lock"
    with run_lock(lock, "training full"):
        with pytest.raises(RunLocked) as err:
            with run_lock(lock, "training full"):
                pass
        msg = str(err.value)
        assert str(lock) in msg and f"pid {os.getpid()}" in msg and "kill" in msg
    with run_lock(lock, "training full"):  # released with its holder
        pass


# Ctrl-C reaches a notebook's launch as KeyboardInterrupt (the kernel's handler). A test run started in
# the background by a non-interactive shell inherits SIGINT *ignored*, and Python then installs no
# handler: the holder would sleep through the test's SIGINT (measured: stuck 120 s, its torchrun still
# training after the kill). The holder restores the handler, as a kernel does.
HOLDER = """
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
from test_train import run_params
from silicon_sing import train as T
T.launch(run_params({run!r}, **{recipe!r}), "full", progress=False)
"""


def _start_holder(run: Path) -> subprocess.Popen:
    """A process that launches a long training of category "full" on ``run``, as a notebook kernel would."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))  # test_train
    # its own session: on failure the whole tree (torchrun agent, workers) goes, not the holder alone
    return subprocess.Popen([sys.executable, "-c", HOLDER.format(run=str(run), recipe=LONG)],
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path},
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_second_launch_on_a_running_category_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    run = make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=2)
    params = run_params(run, **LONG)
    log = params.run.train_log("full")
    holder = _start_holder(run)
    try:
        _wait_for_rows(log, 3, holder)
        start = time.perf_counter()
        with pytest.raises(RunLocked) as err:
            T.launch(params, "full", progress=False)
        assert time.perf_counter() - start < 5  # at once, not after a torchrun start-up
        msg = str(err.value)
        assert str(params.run.train_lock("full")) in msg and f"pid {holder.pid}" in msg and "kill" in msg
        rows = T.read_log(params, "full")
        assert [r["event"] for r in rows if r["kind"] == "event"] == ["start"]  # the holder's job is untouched
        with run_lock(params.run.train_lock("acapella"), "training acapella"):  # another category is free
            pass
        holder.send_signal(signal.SIGINT)  # the notebook's interrupt: launch stops its job, then exits
        assert holder.wait(timeout=120) != 0
        with run_lock(params.run.train_lock("full"), "training full"):  # free again once the holder is gone
            pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


@pytest.mark.slow
def test_a_killed_launch_takes_its_torchrun_job_and_keeps_the_lock_until_it_ends(tmp_path: Path) -> None:
    """A notebook kernel killed with ``kill -9`` (or by the OOM killer) must not leave its job training.

    Before: the agent had no tie to launch, so it and its workers trained on while the lock died with
    launch, and a second launch of the category could train beside them.
    """
    run = make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=2)
    params = run_params(run, **LONG)
    log = params.run.train_log("full")
    holder = _start_holder(run)
    job: list[psutil.Process] = []
    try:
        _wait_for_rows(log, 3, holder)
        job = psutil.Process(holder.pid).children(recursive=True)  # the agent and its workers
        assert len(job) >= 3, job
        holder.send_signal(signal.SIGKILL)  # launch alone: nothing runs its cleanup
        holder.wait(timeout=30)
        alive_before = [p for p in job if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        try:
            with run_lock(params.run.train_lock("full"), "training full"):
                taken = True
        except RunLocked as err:
            taken = False
            assert "still" in str(err) and f"pid {holder.pid}" in str(err)  # the dead holder is named as such
        alive_after = [p for p in alive_before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not (taken and alive_after), "the lock was free while the killed launch's job still ran"
        gone, alive = psutil.wait_procs(job, timeout=90)
        assert not alive, f"the killed launch's job still runs 90 s later: {[p.cmdline()[:4] for p in alive]}"
        rows = _train_rows(log)
        time.sleep(2)
        assert _train_rows(log) == rows  # nobody writes any more
        events = [r["event"] for r in T.read_log(params, "full") if r["kind"] == "event"]
        assert events[-1] == "interrupted", events  # stopped at a step boundary, checkpointed: resume works
        assert (params.run.category_dir("full") / T.CHECKPOINT).exists()
        with run_lock(params.run.train_lock("full"), "training full"):  # free once the job is gone
            pass
    finally:
        for p in job:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


@pytest.mark.slow
def test_torchrun_started_by_hand_on_a_locked_category_fails(tmp_path: Path) -> None:
    """The worker entry point takes the lock itself unless launch (its parent) holds it."""
    params = run_params(make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=1),
                        **{**LONG, "train.updates_per_epoch": 2, "train.nproc_per_node": 1})
    with run_lock(params.run.train_lock("full"), "training full"):
        cmd = T.torchrun_command(params, "full", 1, tmp_path / "torchrun", resume=False)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert out.returncode != 0
        assert "RunLocked" in out.stderr + out.stdout or list((tmp_path / "torchrun").rglob("error.json"))
        assert not params.run.train_log("full").exists()
    result = T.launch(params, "full", progress=False)  # launch holds the lock; its worker does not retake it
    assert result.steps == 2


def test_run_notebooks_on_a_locked_run_dir_fails_fast(tmp_path: Path) -> None:
    from silicon_sing.pipeline import notebooks_lock_path, run_notebooks

    params = run_params(tmp_path / "run")
    with run_lock(notebooks_lock_path(params), "the notebooks"):
        start = time.perf_counter()
        with pytest.raises(RunLocked, match=str(notebooks_lock_path(params))):
            run_notebooks(params)
        assert time.perf_counter() - start < 5
    assert not (params.run.notebooks / "timings.json").exists()
