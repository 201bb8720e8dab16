"""The one torchrun launcher (silicon_sing.torchrun): command line, following output, explaining failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
