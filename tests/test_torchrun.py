"""The one torchrun launcher (silicon_sing.torchrun): command line, following output, explaining failures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from silicon_sing import torchrun


def test_command_runs_a_module_under_torch_distributed_run() -> None:
    cmd = torchrun.command(["--standalone"], 3, "silicon_sing.generate", ["--params", "p.yaml"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[3:] == ["--standalone", "--nproc_per_node=3", "-m", "silicon_sing.generate", "--params", "p.yaml"]
    logged = torchrun.command(["--standalone"], 2, "silicon_sing.train", [], log_dir=Path("/x/logs"))
    assert logged[logged.index("--log-dir") + 1] == "/x/logs" and logged[logged.index("--tee") + 1] == "3"


def test_run_hands_every_stdout_line_over_and_keeps_the_stderr_tails(tmp_path: Path) -> None:
    script = "import sys\nfor i in range(50): print(i)\nprint('boom', file=sys.stderr)\nsys.exit(3)"
    seen: list[str] = []
    outcome = torchrun.run([sys.executable, "-c", script], stderr_path=tmp_path / "err", on_line=seen.append,
                           tail_lines=30)
    assert outcome.returncode == 3 and len(seen) == 50
    assert outcome.stderr_tail == "boom" and (tmp_path / "err").read_text() == "boom\n"
    assert outcome.stdout_tail.splitlines() == [str(i) for i in range(20, 50)]
    assert torchrun.failure_tail(outcome, n_lines=30) == (None, "boom")
    quiet = torchrun.run([sys.executable, "-c", "print('only stdout'); raise SystemExit(1)"])
    assert torchrun.failure_tail(quiet) == (None, "only stdout")  # no stderr: the stdout tail


def test_the_failing_rank_is_the_first_whose_error_is_not_a_lost_peer(tmp_path: Path) -> None:
    def error(rank: int, text: str, ts: int) -> None:
        d = tmp_path / "job" / "attempt_0" / str(rank)
        d.mkdir(parents=True)
        (d / "error.json").write_text(json.dumps({"message": {"message": text, "extraInfo": {"timestamp": ts}}}))
        (d / "stderr.log").write_text(f"rank {rank} says {text}\n")

    error(0, "Connection closed by peer", 1)
    error(1, "ValueError: cannot be decoded", 2)
    rank, tail = torchrun.failing_rank_tail(tmp_path)
    assert rank == 1 and "cannot be decoded" in tail
    outcome = torchrun.JobOutcome(1, "agent stderr", "")
    assert torchrun.failure_tail(outcome, tmp_path) == (1, tail)
    assert torchrun.failure_tail(outcome, tmp_path / "empty") == (None, "agent stderr")


# a caller with several threads (a notebook kernel has a few) that runs a job counting the SIGTERMs it gets
CALLER = """
import sys, threading, time
from silicon_sing import torchrun
for _ in range(4):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
job = ("import signal, sys, time\\n"
       "n = 0\\n"
       "def on(s, f):\\n"
       "    global n; n += 1; open(sys.argv[1], 'a').write('TERM\\\\n')\\n"
       "signal.signal(signal.SIGTERM, on)\\n"
       "open(sys.argv[1], 'a').write('up\\\\n')\\n"
       "end = time.time() + 20\\n"
       "while time.time() < end and n == 0: time.sleep(0.05)\\n"
       "time.sleep(2)\\n")
torchrun.run([sys.executable, "-c", job, sys.argv[1]])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
def test_a_job_gets_one_sigterm_when_its_multithreaded_caller_is_killed(tmp_path: Path) -> None:
    """kill -9 of the caller: the job is stopped as by the stop button, once (ranks abort on a second SIGTERM)."""
    record = tmp_path / "record"
    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(record)], start_new_session=True)
    try:
        deadline = time.time() + 60
        while not (record.exists() and "up" in record.read_text()):
            assert caller.poll() is None and time.time() < deadline, "the job never started"
            time.sleep(0.05)
        job = psutil.Process(caller.pid).children(recursive=True)
        caller.send_signal(signal.SIGKILL)
        caller.wait(timeout=30)
        gone, alive = psutil.wait_procs(job, timeout=30)
        assert not alive, "the job outlived its killed caller"
        assert record.read_text().splitlines() == ["up", "TERM"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(caller.pid, signal.SIGKILL)
        caller.wait()


def test_the_supervisor_passes_the_job_its_exit_code_and_a_held_lock(tmp_path: Path) -> None:
    from silicon_sing.fsutil import RunLocked, run_lock

    lock = tmp_path / ".lock"
    check = ("import sys\nfrom silicon_sing.fsutil import run_lock\n"
             "try:\n    run_lock(sys.argv[1], 'x').__enter__()\nexcept Exception as e:\n    print(type(e).__name__)\n"
             "sys.exit(7)")
    with run_lock(lock, "training full") as held:
        seen: list[str] = []
        outcome = torchrun.run([sys.executable, "-c", check, str(lock)], on_line=seen.append, pass_fds=(held.fd,))
        assert outcome.returncode == 7 and seen == ["RunLocked\n"]
        with pytest.raises(RunLocked):
            with run_lock(lock, "training full"):
                pass
    assert torchrun.main(["1"]) == 2  # usage
