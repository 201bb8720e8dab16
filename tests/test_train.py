"""Fine-tuning: token cache, recipe pieces, and real 2-process torchrun runs of the nano model on CPU."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from silicon_sing import torchrun
from silicon_sing import train as T
from silicon_sing.data import load_training_examples
from silicon_sing.models import nano_musicgen, state_fingerprint
from silicon_sing.params import Params, load_params
from silicon_sing.train.launch import JobProgress, ProgressBar
from stems import CuratedTrack, write_curated_run

SR = 32000
UUID = "0f8c2a4e-5b1d-4c3a-9e7f-2d6b8a1c0e94"
ARTISTS = {"ana": (220.0, "bright energetic pop"), "bo": (165.0, "calm dark ballad"), "cy": (330.0, "fast happy rock")}
# a small recipe: 2 epochs × 15 updates of a global batch of 4 (2 per process); D-Adaptation needs
# ~15 steps to grow its step size from d0 = 1e-6, so fewer steps would barely move the loss
U = 15
# the random-init tiny model: these tests check the machinery (the shipped nano: tests/test_pretrain.py)
RECIPE = {"train.epochs": 2, "train.updates_per_epoch": U, "train.batch_size": 4, "train.warmup_steps": 2,
          "train.model": "nano-random"}


# --------------------------------------------------------------------------- a tiny curated + captioned run


def _voice(t: np.ndarray, f0: float, rng: np.random.Generator) -> np.ndarray:
    """A harmonic, vibrato'd, syllable-gated tone."""
    vib = 1 + 0.01 * np.sin(2 * np.pi * 5 * t)
    x = sum(np.sin(2 * np.pi * f0 * k * vib * t + rng.uniform(0, 6.28)) / k for k in range(1, 5))
    return 0.2 * x * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2)


def _inst(t: np.ndarray, f0: float, rng: np.random.Generator) -> np.ndarray:
    """Bass notes plus noise hits on the beat."""
    beat = (np.mod(t, 0.5) < 0.05).astype(float)
    return 0.15 * np.sin(2 * np.pi * f0 / 4 * t) + 0.1 * beat * rng.standard_normal(t.size)


def make_fake_run(run_dir: Path, seconds: float = 2.0, tracks_per_artist: int = 2, segments_per_track: int = 3,
                  seed: int = 0) -> Path:
    """Curated segments, manifests and captioned sidecars as stages 01–02 write them (CONTRIBUTING.md)."""
    rng = np.random.default_rng(seed)
    tracks = []
    for a_i, (artist, (f0, mood)) in enumerate(ARTISTS.items()):
        for tr in range(tracks_per_artist):
            pieces = []  # each segment's own random phases and hits (the audio these tests were tuned on)
            for i in range(segments_per_track):
                t = np.arange(int(seconds * SR)) / SR + i * seconds
                pieces.append((_voice(t, f0 * (1 + 0.05 * tr), rng), _inst(t, f0, rng)))
            aca, inst = (np.concatenate(p) for p in zip(*pieces))
            split = "valid" if tr == tracks_per_artist - 1 and tracks_per_artist > 1 else "train"
            tracks.append(CuratedTrack(artist, f"track{tr}", split,
                                       {"acapella": aca, "instrumental": inst, "full": aca + inst},
                                       {"bpm": 100 + 20 * a_i, "genre": "pop", "moods": [mood.split()[0]]}))

    def caption(track: CuratedTrack, category: str, index: int) -> str:
        return f"{UUID} {ARTISTS[track.artist][1]} {category} track by {track.artist}"

    return write_curated_run(run_dir, tracks, seconds, SR, caption, uuid=UUID)


def run_params(run_dir: Path, **overrides: object) -> Params:
    """The smoke profile pointed at ``run_dir`` with the small recipe."""
    return load_params("params/smoke.yaml", {"run_dir": str(run_dir), **RECIPE, **overrides})


def export_state(params: Params, category: str) -> dict[str, torch.Tensor]:
    """The exported LM weights of one category."""
    return torch.load(params.run.export(category) / "state_dict.bin", weights_only=False)["best_state"]


@pytest.fixture(scope="module")
def trained_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Params, dict[str, T.TrainResult], list[list[str]]]:
    """One uninterrupted 2-process torchrun run on CPU of two categories, as notebook 03 trains them, and the
    commands of the torchrun jobs it started."""
    params = run_params(make_fake_run(tmp_path_factory.mktemp("run-a")))
    jobs: list[list[str]] = []
    real_run = torchrun.run

    def spy(cmd: list[str], *args: Any, **kwargs: Any) -> torchrun.JobOutcome:
        jobs.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torchrun, "run", spy)
        results = T.train_all(params, ["acapella", "full"], progress=False)
    return params, results, jobs


@pytest.fixture(scope="module")
def trained(trained_job: tuple[Params, dict[str, T.TrainResult], list[list[str]]]) -> tuple[Params, T.TrainResult]:
    """The reference for several tests: "full", trained after "acapella" in the same job (the resume test compares
    it with "full" trained alone, so a category trained second must learn exactly what it learns alone)."""
    params, results, _ = trained_job
    return params, results["full"]


# --------------------------------------------------------------------------- torchrun runs


@pytest.mark.slow
def test_train_all_trains_its_categories_one_after_another_in_one_torchrun_job(
        trained_job: tuple[Params, dict[str, T.TrainResult], list[list[str]]]) -> None:
    """Each torchrun job costs ~14 s before its first step on 2 cores (agent, imports, model): one job, not three."""
    params, results, jobs = trained_job
    assert len(jobs) == 1
    assert list(results) == ["acapella", "full"] and not any(r.reused for r in results.values())
    for category, result in results.items():
        assert T.is_up_to_date(params, category) and result.steps == 2 * U
        assert [r["step"] for r in T.read_log(params, category) if r["kind"] == "train"] == list(range(1, 2 * U + 1))
    starts = {c: T.read_log(params, c)[0]["time"] for c in results}
    assert starts["acapella"] < starts["full"]  # in the order asked for
    again = T.train_all(params, ["acapella", "full"], progress=False)
    assert all(r.reused for r in again.values())


@pytest.mark.slow
def test_a_job_failing_after_its_last_export_keeps_every_result(
        trained_job: tuple[Params, dict[str, T.TrainResult], list[list[str]]], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """E.g. a rank dying while the process group is torn down: the exports are whole and fingerprinted."""
    L = importlib.import_module("silicon_sing.train.launch")  # the package's `launch` is the function

    params, results, _ = trained_job
    monkeypatch.setattr(torchrun, "run", lambda *a, **k: torchrun.JobOutcome(1, "teardown failed", ""))
    with caplog.at_level("WARNING", logger=L.__name__):
        again = L._launch_locked(params, list(results), True, False, 2, {}, [])
    assert {c: r.fingerprint for c, r in again.items()} == {c: r.fingerprint for c, r in results.items()}
    assert "exited with code 1 after exporting acapella, full" in caplog.text


@pytest.mark.slow
def test_two_process_training_lowers_the_loss_and_logs_every_step(trained: tuple[Params, T.TrainResult]) -> None:
    params, result = trained
    assert result.world_size == 2 and result.steps == 2 * U and result.skipped_steps == 0
    assert result.final_train_loss < 0.8 * result.first_train_loss
    assert len(result.valid_losses) == 2 and result.valid_losses[-1] < result.valid_losses[0]
    # the starting model's loss on the same split, measured before the first step: the baseline
    assert result.valid_losses[0] < result.start_valid_loss < 10
    rows = T.read_log(params, "full")
    assert [(r["kind"], r["step"]) for r in rows[:2]] == [("event", 0), ("valid", 0)]
    assert rows[1]["loss"] == result.start_valid_loss
    steps = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in steps] == list(range(1, 2 * U + 1))  # rank 0 alone writes, once per step
    for key in ("loss", "ce", "lr", "effective_lr", "grad_norm", "tokens_per_s", "samples_per_s", "skipped_total"):
        assert key in steps[-1]
    assert len(steps[-1]["ce"]) == 4 and all(np.isfinite(steps[-1]["ce"]))
    assert steps[0]["lr"] == 0.0 and steps[2]["lr"] == pytest.approx(1.0, rel=0.05)  # warmup, then cosine
    curves = T.loss_curves(params, "full")
    assert len(curves["train"]) == 2 * U and [step for step, _ in curves["valid"]] == [0, U, 2 * U]
    glue = T.summary(params, {"full": result})
    moved = result.valid_losses[-1] - result.start_valid_loss
    assert glue["full_valid_start"] == f"{result.start_valid_loss:.3f}" and glue["full_valid_moved"] == f"{moved:+.3f}"
    assert T.results_table({"full": result}).loc["full", "valid loss before training"] == result.start_valid_loss


@pytest.mark.slow
def test_export_loads_with_get_pretrained_and_differs_from_the_start(trained: tuple[Params, T.TrainResult]) -> None:
    from audiocraft.models import MusicGen
    from audiocraft.modules.transformer import StreamingMultiheadAttention

    params, result = trained
    model = MusicGen.get_pretrained(result.export_dir, device="cpu")
    # trained with the fused attention, generates with the streaming-safe one its config names
    assert not any(m.memory_efficient for m in model.lm.modules() if isinstance(m, StreamingMultiheadAttention))
    start = nano_musicgen(seed=params.seed)
    assert state_fingerprint(model.compression_model) == state_fingerprint(start.compression_model)
    assert state_fingerprint(model.lm) != state_fingerprint(start.lm)
    assert not (params.run.category_dir("full") / T.CHECKPOINT).exists()  # the export supersedes it


@pytest.mark.slow
def test_rerun_with_unchanged_inputs_does_no_work(trained: tuple[Params, T.TrainResult]) -> None:
    params, result = trained
    log = Path(result.log_path)
    before = log.stat().st_mtime_ns
    start = time.perf_counter()
    again = T.launch(params, "full", progress=False)
    assert again.reused and again.fingerprint == result.fingerprint
    assert time.perf_counter() - start < 15 and log.stat().st_mtime_ns == before
    assert T.train(params, "full") == 0 and log.stat().st_mtime_ns == before  # the entry point, too
    assert not T.is_up_to_date(run_params(Path(params.run_dir), **{"train.cfg_dropout": 0.1}), "full")


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_resume_after_kill_mid_epoch_matches_the_uninterrupted_run(
        trained: tuple[Params, T.TrainResult], tmp_path: Path, fsdp: bool) -> None:
    """Also under FSDP: full (unsharded) checkpoints, each rank's D-Adaptation sums restored."""
    reference, _ = trained
    params = run_params(make_fake_run(tmp_path / "run-b"), **{"train.fsdp": fsdp})  # same content, another run dir
    log = params.run.train_log("full")
    cmd = T.torchrun_command(params, "full", 2, tmp_path / "torchrun", resume=False)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and sum('"train"' in line for line in log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # what a scheduler or Ctrl-C does; torchrun forwards it to every rank
    assert proc.wait(timeout=120) != 0
    events = [r for r in T.read_log(params, "full") if r["kind"] == "event"]
    assert events[-1]["event"] == "interrupted"
    ckpt = torch.load(params.run.category_dir("full") / T.CHECKPOINT, weights_only=False)
    assert ckpt["epoch"] == 0 and 0 < ckpt["step_in_epoch"] < U  # mid-epoch
    assert not (params.run.export("full") / "done.json").exists()

    result = T.launch(params, "full", resume=True, progress=False)
    assert result.steps == 2 * U
    steps = [r["step"] for r in T.read_log(params, "full") if r["kind"] == "train"]
    assert steps == list(range(1, 2 * U + 1))  # rows after the checkpoint were recomputed, not duplicated
    valid = [r["step"] for r in T.read_log(params, "full") if r["kind"] == "valid"]
    assert valid == [0, U, 2 * U]  # the starting model's loss survives the resume, once
    a, b = export_state(reference, "full"), export_state(params, "full")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_failing_rank_stops_the_job_and_its_error_is_shown(tmp_path: Path) -> None:
    """The second category of a job fails: the error names it, and the first keeps its export. (A colon in the
    run dir, as in a timestamp, must not split the held locks' paths.)"""
    params = run_params(make_fake_run(tmp_path / "run:2026-12-07T03:50"), **{"train.epochs": 1})
    rows = [json.loads(x) for x in (params.run.curated / "manifests" / "acapella" / "train" / "data.jsonl").open()]
    Path(rows[1]["path"]).write_bytes(b"not audio at all")  # segment 1 is encoded by rank 1
    start = time.perf_counter()
    with pytest.raises(T.TrainingFailed) as err:
        T.train_all(params, ["full", "acapella"], progress=False)
    assert time.perf_counter() - start < 180  # the other rank does not hang
    msg = str(err.value)
    assert "training acapella failed" in msg and "rank 1" in msg and "cannot be decoded" in msg and rows[1]["path"] in msg
    assert T.is_up_to_date(params, "full") and "full finished first and kept their exports" in msg  # nothing lost


# --------------------------------------------------------------------------- in-process pieces


def test_progress_bar_shows_the_step_the_train_loss_and_the_last_validation_loss() -> None:
    def line(**row: object) -> str:
        return "[rank0]: " + T.PROGRESS + json.dumps(row)

    with ProgressBar("full", 4, progress=True) as bar:
        bar.on_line(line(kind="valid", epoch=0, step=0, loss=3.4567))  # the starting model, before step 1
        assert bar.bar.n == 0 and bar.bar.postfix == "valid=3.457"
        bar.on_line(line(kind="train", epoch=0, step=2, loss=3.1))
        bar.on_line("some other output")
        assert bar.bar.n == 2 and bar.bar.postfix == "valid=3.457, loss=3.100, epoch=0"
        bar.on_line(line(kind="valid", epoch=0, step=2, loss=3.2))
        assert bar.bar.postfix == "valid=3.200, loss=3.100, epoch=0"
        bar.on_line(line(kind="train", epoch=1, step=3, loss=2.0, category="acapella"))  # another bar's line
        assert bar.bar.n == 2


def test_the_line_a_rank_prints_is_the_row_the_launcher_reads(capsys: pytest.CaptureFixture[str]) -> None:
    from silicon_sing.train.launch import progress_message
    from silicon_sing.train.trainer import emit_progress

    row = {"kind": "event", "event": "begin", "category": "acapella"}  # the worker's events and the trainer's rows
    emit_progress(row)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert progress_message("[rank0]: " + out.rstrip("\n")) == row  # torchrun prefixes each line with its rank
    assert progress_message("[rank0]: " + T.PROGRESS + "{torn") is None and progress_message("loss 3.1") is None


def test_a_jobs_progress_lines_move_the_bar_of_their_category() -> None:
    def line(**row: object) -> str:
        return "[rank0]: " + T.PROGRESS + json.dumps(row)

    with JobProgress(["acapella", "full"], 4, progress=False) as bars:
        bars.on_line(line(kind="train", epoch=0, step=3, loss=2.0, category="acapella"))
        bars.on_line(line(kind="event", event="up-to-date", category="full"))
        assert bars.bars["acapella"].bar.n == 3 and bars.bars["full"].bar.n == 4


class _FakeTrainer:
    """Stands in for :class:`T.Trainer` in the job loop: records the category, can raise a stop signal as it ends."""

    runs: list[str] = []
    signal_during: str | None = None

    def __init__(self, params: Params, category: str, ctx: T.Dist) -> None:
        self.category = category

    def run(self, resume: bool, stop: T.StopFlag | None = None) -> int:
        _FakeTrainer.runs.append(self.category)
        if stop is not None and self.category == _FakeTrainer.signal_during:
            stop._handle(signal.SIGTERM, None)  # e.g. scancel while the export is written
        return 0


def test_a_signal_while_a_category_finishes_stops_the_job_before_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    worker = importlib.import_module("silicon_sing.train.worker")
    _single_process(monkeypatch)
    monkeypatch.setattr(worker, "Trainer", _FakeTrainer)
    monkeypatch.setattr(_FakeTrainer, "runs", [])
    monkeypatch.setattr(_FakeTrainer, "signal_during", "acapella")
    params = run_params(tmp_path / "run")
    assert worker.train(params, ["acapella", "full", "instrumental"]) == 128 + signal.SIGTERM
    assert _FakeTrainer.runs == ["acapella"]  # full was not started
    events = [json.loads(x.split(T.PROGRESS, 1)[1]) for x in capsys.readouterr().out.splitlines() if T.PROGRESS in x]
    assert [(e["event"], e["category"]) for e in events] == [("begin", "acapella"), ("stopped", "full")]
    bars = JobProgress(["acapella", "full"], 4, progress=False)
    for e in events:
        bars.on_line(T.PROGRESS + json.dumps(e))
    assert bars.begun == "acapella" and bars.stopped == "full"


def test_ranks_that_see_different_work_left_stop_before_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """E.g. a second node whose filesystem cache still misses an export: it would train another category in lockstep."""
    worker = importlib.import_module("silicon_sing.train.worker")
    _single_process(monkeypatch)
    monkeypatch.setattr(worker, "Trainer", _FakeTrainer)
    monkeypatch.setattr(_FakeTrainer, "runs", [])
    monkeypatch.setattr(worker, "gather_objects", lambda todo, world: [todo, todo[1:]])
    with pytest.raises(RuntimeError, match=r"ranks disagree .*rank 1: \['full'\].*same run dir"):
        worker.train(run_params(tmp_path / "run"), ["acapella", "full"])
    assert _FakeTrainer.runs == []


@pytest.mark.parametrize("events, exported, expected", [
    ([("begin", "acapella"), ("stopped", "full")], [], (T.TrainingInterrupted, "stopped before training full began")),
    ([("begin", "acapella"), ("begin", "full")], [], (T.TrainingFailed, "training full failed")),
    ([("begin", "acapella")], ["acapella"], (T.TrainingFailed, "failed after acapella had written its export")),
], ids=["stopped-between", "second-fails", "teardown-after-export"])
def test_the_error_names_the_category_the_job_was_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]], exported: list[str],
        expected: tuple[type[Exception], str]) -> None:
    launch_module = importlib.import_module("silicon_sing.train.launch")
    params = run_params(tmp_path / "run")

    def job(cmd: list[str], *args: Any, on_line: Any = None, **kwargs: Any) -> torchrun.JobOutcome:
        for event, category in events:
            on_line(T.PROGRESS + json.dumps({"kind": "event", "event": event, "category": category}))
        return torchrun.JobOutcome(143 if events[-1][0] == "stopped" else 1, "", "")

    monkeypatch.setattr(torchrun, "run", job)
    monkeypatch.setattr(launch_module, "is_up_to_date", lambda p, c: c in exported)
    monkeypatch.setattr(launch_module, "load_result", lambda p, c, reused=False: types.SimpleNamespace(
        steps=1, world_size=2, first_train_loss=1.0, final_train_loss=0.5, samples_per_s=1.0))
    error, message = expected
    with pytest.raises(error, match=message):
        launch_module._launch_locked(params, ["acapella", "full"], True, False, 2, {}, [])


def test_batches_do_not_depend_on_the_number_of_processes() -> None:
    order = T.epoch_order(n_examples=7, n_samples=24, seed=3, epoch=1)
    assert order == T.epoch_order(7, 24, 3, 1) and order != T.epoch_order(7, 24, 3, 2)
    assert sorted(order[:7]) == list(range(7))  # every example once before any repeats
    assert sorted(T.rank_positions(8, 0, 2) + T.rank_positions(8, 1, 2)) == T.rank_positions(8, 0, 1)
    _, alone = T.step_rngs(3, 1, 5, [0, 1, 2, 3])
    _, rank1 = T.step_rngs(3, 1, 5, T.rank_positions(4, 1, 2))
    assert [r.random() for r in rank1] == [alone[i].random() for i in (1, 3)]


def test_training_captions_never_lose_the_uuid(tmp_path: Path) -> None:
    run = make_fake_run(tmp_path / "run", tracks_per_artist=1, segments_per_track=1)
    ex = load_training_examples(run, "acapella", "train")[0]
    rng = np.random.default_rng(0)
    captions = [T.augment(ex, UUID, rng, word_dropout=0.5) for _ in range(200)]
    assert all(c.split(" ")[0] == UUID for c in captions)
    assert len(set(captions)) > 20  # the rest is augmented


def test_classifier_free_guidance_dropout_nulls_every_condition(tmp_path: Path) -> None:
    run = make_fake_run(tmp_path / "run", tracks_per_artist=1, segments_per_track=1)
    exs = load_training_examples(run, "acapella", "train")
    lm = nano_musicgen(seed=0).lm
    descs = [e.description for e in exs]
    def attrs() -> list:
        return T.make_attributes(lm, exs, descs, [None] * len(exs), SR)

    kept = T.apply_condition_dropout(lm, attrs(), np.random.default_rng(0), 0.0)
    assert [a.text["description"] for a in kept] == descs
    dropped = T.apply_condition_dropout(lm, attrs(), np.random.default_rng(0), 1.0)
    assert all(a.text["description"] is None for a in dropped)


def test_missing_captions_point_to_stage_02(tmp_path: Path) -> None:
    run = make_fake_run(tmp_path / "run", tracks_per_artist=1, segments_per_track=1)
    side = next((run / "curated" / "segments" / "full").rglob("*.json"))
    side.write_text(json.dumps({**json.loads(side.read_text()), "description": ""}))
    with pytest.raises(ValueError, match="captioning"):
        load_training_examples(run, "full", "train")


def test_dispatch_command_rebuilds_the_same_parameters(tmp_path: Path) -> None:
    params = run_params(tmp_path, **{"train.cfg_dropout": 0.25})
    params.train.epochs = 5  # changed after loading: still passed on
    cmd = T.torchrun_command(params, "acapella", 2, tmp_path / "logs", resume=True)
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"] and "--nproc_per_node=2" in cmd
    assert cmd[cmd.index("-m", 3) + 1] == "silicon_sing.train" and cmd[-1] == "--resume"
    rebuilt = load_params(cmd[cmd.index("--params") + 1], json.loads(cmd[cmd.index("--overrides") + 1]))
    assert rebuilt.train == params.train and rebuilt.run_dir == params.run_dir and rebuilt.seed == params.seed


def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the trainer in this process (no torchrun variables)."""
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)


def test_non_finite_steps_are_skipped_counted_and_stop_the_run_when_repeated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _single_process(monkeypatch)
    run = make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=1)
    forward = T.LMLoss.forward
    calls = {"n": 0, "bad": {2}}

    def flaky(self: T.LMLoss, codes: torch.Tensor, attributes: list) -> tuple:
        calls["n"] += torch.is_grad_enabled()  # training forwards only: validation runs without gradients
        loss, sums, counts = forward(self, codes, attributes)
        bad = calls["n"] in calls["bad"] or "all" in calls["bad"]
        return (loss * float("nan") if bad else loss), sums, counts

    monkeypatch.setattr(T.LMLoss, "forward", flaky)
    params = run_params(run, **{"train.epochs": 1, "train.updates_per_epoch": 4, "train.batch_size": 2,
                                "train.max_bad_steps": 3, "train.nproc_per_node": 1})
    assert T.train(params, "acapella") == 0
    steps = [r for r in T.read_log(params, "acapella") if r["kind"] == "train"]
    assert [r["skipped"] for r in steps] == [False, True, False, False] and steps[-1]["skipped_total"] == 1
    assert T.load_result(params, "acapella").skipped_steps == 1

    calls["bad"] = {"all"}
    with pytest.raises(T.TrainingDiverged, match="3 consecutive steps.*train.lr"):
        T.train(run_params(run, **{"train.epochs": 1, "train.updates_per_epoch": 4, "train.batch_size": 2,
                                   "train.max_bad_steps": 3, "train.cfg_dropout": 0.5}), "instrumental")


@pytest.mark.parametrize("where", ["train", "valid"])
def test_out_of_memory_names_the_parameter_to_lower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    where: str) -> None:
    """In a training step or in a validation pass (the first comes before any step)."""
    _single_process(monkeypatch)
    run = make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=1)
    forward = T.LMLoss.forward

    def oom(self: T.LMLoss, codes: torch.Tensor, attributes: list) -> tuple:
        if torch.is_grad_enabled() == (where == "train"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, codes, attributes)

    monkeypatch.setattr(T.LMLoss, "forward", oom)
    params = run_params(run, **{"train.epochs": 1, "train.updates_per_epoch": 2, "train.batch_size": 2,
                                "train.warmup_steps": 1})
    with pytest.raises(RuntimeError, match=r"lower train\.batch_size \(now 2"):
        T.train(params, "full")


# --------------------------------------------------------------------------- precision, FSDP, several nodes


@pytest.mark.parametrize("model", ["nano", "nano-random"])
def test_training_attention_is_torchs_fused_kernel_and_learns_what_the_generation_attention_would(model: str) -> None:
    """The nano LMs generate with audiocraft's einsum attention (rope breaks its fused path when streaming); training
    does not stream, so it runs the fused kernel audiocraft trains MusicGen with: same loss and gradients."""
    from audiocraft.modules.conditioners import ConditioningAttributes
    from audiocraft.modules.transformer import StreamingMultiheadAttention

    from silicon_sing.models import load_model

    lm = load_model(model, seed=0).lm.train()
    torch.manual_seed(0)
    codes = torch.randint(0, lm.card, (2, lm.num_codebooks, 150))
    attributes = [ConditioningAttributes(text={"description": d}) for d in ("calm pop song", "fast rock")]

    def loss_and_grads() -> tuple[torch.Tensor, torch.Tensor]:
        lm.zero_grad()
        loss = T.LMLoss(lm)(codes, attributes)[0]
        loss.backward()
        return loss.detach(), torch.cat([q.grad.flatten() for q in lm.parameters() if q.grad is not None])

    attention = [m for m in lm.modules() if isinstance(m, StreamingMultiheadAttention)]
    assert attention and not any(m.memory_efficient for m in attention)
    loss, grads = loss_and_grads()
    assert T.fused_attention_for_training(lm) == len(attention)
    assert all(m.memory_efficient for m in attention)
    fused_loss, fused_grads = loss_and_grads()
    torch.testing.assert_close(fused_loss, loss, rtol=1e-6, atol=0)
    assert float((fused_grads - grads).norm() / grads.norm()) < 1e-5
    assert T.fused_attention_for_training(lm) == 0  # idempotent


def test_audiocraft_hands_fp16_weights_to_any_non_cpu_device_and_the_trainer_casts_them_up() -> None:
    """What ``loaders.load_lm_model`` returns for a GPU (here the meta device): fp16 weights, which we cast."""
    from audiocraft.models import loaders

    from silicon_sing.models import NANO_DIR

    lm = loaders.load_lm_model(str(NANO_DIR / "state_dict.bin"), device="meta")
    assert torch.float16 in {p.dtype for p in lm.parameters()}
    assert T.master_weights_fp32(lm) > 0 and {p.dtype for p in lm.parameters()} == {torch.float32}
    assert T.master_weights_fp32(lm) == 0  # idempotent


def test_precision_plans_follow_audiocrafts_solver() -> None:
    assert T.PrecisionPlan.for_precision("fp16") == T.PrecisionPlan(torch.float16, True)
    assert T.PrecisionPlan.for_precision("bf16") == T.PrecisionPlan(torch.bfloat16, False)
    assert T.PrecisionPlan.for_precision("fp32") == T.PrecisionPlan(None, False)
    with pytest.raises(ValueError, match="train.precision='fp8'"):
        T.PrecisionPlan.for_precision("fp8")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_trainer_handed_fp16_weights_trains_fp32_master_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    """Whatever dtype the loader hands over, every LM tensor moves and stays fp32; fp16 steps use a scaler."""
    from silicon_sing import models as M

    _single_process(monkeypatch)
    run = make_fake_run(tmp_path / "run", tracks_per_artist=2, segments_per_track=1)
    load = M.load_model

    def as_a_gpu_load_would(*args: object, **kwargs: object) -> object:
        model = load(*args, **kwargs)
        model.lm.half()  # audiocraft's loaders.load_lm_model on any non-CPU device
        return model

    monkeypatch.setattr(M, "load_model", as_a_gpu_load_would)
    params = run_params(run, **{"train.epochs": 1, "train.updates_per_epoch": 5, "train.batch_size": 2,
                                "train.precision": precision, "train.nproc_per_node": 1})
    trainer = T.Trainer(params, "full", T.Dist(0, 1, 0, torch.device("cpu")))
    assert trainer.cast_to_fp32 > 0 and trainer.fused_attention > 0
    assert all(p.dtype == torch.float32 for p in trainer.lm.parameters() if p.requires_grad)
    assert (trainer.scaler is not None) == (precision == "fp16")
    before = {k: v.clone() for k, v in trainer.lm.state_dict().items() if v.is_floating_point()}
    trainer.stop, trainer.global_step, trainer.skipped, trainer.bad_in_row = T.StopFlag(), 0, 0, 0
    trainer.prepare_tokens()
    trainer.build_optim()
    order = T.epoch_order(len(trainer.train_set), 10, params.seed, 0)
    rows = [trainer.train_step(0, s, order) for s in range(5)]
    assert not any(r["skipped"] for r in rows)
    after = trainer.lm.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved == list(before), f"{len(before) - len(moved)} of {len(before)} LM tensors never moved"
    assert trainer.opt.param_groups[0]["d"] > 1e-6  # D-Adaptation grew its step size
    if trainer.scaler is not None:
        assert trainer.scaler.get_scale() > 1.0 and trainer.scaler.is_enabled()


def test_nccl_without_a_gpu_stops_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = load_params("params/paper.yaml", {"run_dir": str(tmp_path / "run")})
    with pytest.raises(T.NoGPU, match="train.dist_backend: gloo"):
        T.launch(params, "full", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before any process started


def test_fit_check_stops_before_launch_and_names_the_knobs(tmp_path: Path) -> None:
    from silicon_sing.memory import DoesNotFit

    params = load_params("params/paper.yaml", {"run_dir": str(tmp_path / "run"), "train.dist_backend": "gloo",
                                               "train.gpu_memory_gib": 24.0})
    with pytest.raises(DoesNotFit, match=r"(?s)24.0 GiB.*train.activation_checkpointing: true.*train.fsdp: true"):
        T.launch(params, "full", progress=False)
    fits = load_params("params/paper.yaml", {"run_dir": str(tmp_path / "run"), "train.dist_backend": "gloo",
                                             "train.gpu_memory_gib": 24.0, "train.fsdp": True})
    T.preflight(fits, progress=False)  # FSDP over 8 GPUs brings it under 24 GiB


def test_several_nodes_use_a_c10d_rendezvous(tmp_path: Path) -> None:
    params = run_params(tmp_path, **{"train.nnodes": 2, "train.rdzv_endpoint": "node0:29400", "train.rdzv_id": "j7"})
    cmd = T.torchrun_command(params, "full", 8, tmp_path / "logs", resume=True)
    assert "--standalone" not in cmd
    for arg in ("--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=node0:29400", "--rdzv-id=j7",
                "--nproc_per_node=8"):
        assert arg in cmd
    with pytest.raises(ValueError, match="train.rdzv_endpoint"):
        T.torchrun_command(run_params(tmp_path, **{"train.nnodes": 2}), "full", 8, tmp_path, resume=False)


@pytest.mark.slow
def test_fsdp_with_activation_checkpointing_trains_what_ddp_trains(
        trained: tuple[Params, T.TrainResult], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Sharded weights/gradients/D-Adaptation state and recomputed layers: the same model, to float precision."""
    ref_params, ref = trained
    params = run_params(make_fake_run(tmp_path_factory.mktemp("run-fsdp")),
                        **{"train.fsdp": True, "train.activation_checkpointing": True})
    result = T.launch(params, "full", progress=False)
    done = T.read_done(params, "full")
    assert done["fsdp"] and result.world_size == 2 and result.steps == ref.steps
    a, b = export_state(ref_params, "full"), export_state(params, "full")
    assert sorted(a) == sorted(b)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    assert result.valid_losses == pytest.approx(ref.valid_losses, rel=1e-5)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_nodes_of_one_process_train_what_one_node_of_two_trains(
        trained: tuple[Params, T.TrainResult], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two torchrun agents (two "nodes", one process each) meet at a c10d rendezvous on localhost."""
    ref_params, ref = trained
    params = run_params(make_fake_run(tmp_path_factory.mktemp("run-nodes")),
                        **{"train.nnodes": 2, "train.nproc_per_node": 1, "train.rdzv_id": "two-nodes",
                           "train.rdzv_endpoint": f"127.0.0.1:{_free_port()}"})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen(T.torchrun_command(params, "full", 1, params.run.category_dir("full") / f"node{i}",
                                                 resume=False), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=800)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errs)
    result = T.load_result(params, "full")
    assert result.world_size == 2 and result.steps == ref.steps
    a, b = export_state(ref_params, "full"), export_state(params, "full")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same batches, same reductions: the same bits


@pytest.mark.slow
def test_an_unreadable_checkpoint_restarts_and_an_old_interruption_hides_no_new_error(tmp_path: Path) -> None:
    """A truncated checkpoint and a killed write's temp file: resume starts over, naming the file.

    An ``interrupted`` row left by an earlier job must not turn this job's real failure into
    "stopped, call resume" (which resumed into the same failure, in a loop).
    """
    recipe = {"train.epochs": 1, "train.updates_per_epoch": 2, "train.batch_size": 2, "train.nproc_per_node": 1,
              "train.warmup_steps": 1}
    params = run_params(make_fake_run(tmp_path / "run"), **recipe)
    cdir = params.run.category_dir("full")
    cdir.mkdir(parents=True)
    old = json.dumps({"kind": "event", "event": "interrupted", "epoch": 0, "step": 1, "time": time.time() - 3600})
    (cdir / T.CHECKPOINT).write_bytes(b"PK\x03\x04 cut off by a full disk")
    (cdir / ".checkpoint.x1y2z3.pt").write_bytes(b"half of a write killed before its rename")
    (cdir / "log.jsonl").write_text(old + "\n")
    result = T.launch(params, "full", resume=True, progress=False)
    assert result.steps == 2 and not (cdir / ".checkpoint.x1y2z3.pt").exists()
    assert f"{cdir / T.CHECKPOINT} cannot be read" in (cdir / "torchrun.stderr").read_text()

    params = run_params(make_fake_run(tmp_path / "run2"), **recipe)
    cdir = params.run.category_dir("full")
    cdir.mkdir(parents=True)
    (cdir / "log.jsonl").write_text(old + "\n")
    rows = [json.loads(x) for x in (params.run.curated / "manifests" / "full" / "train" / "data.jsonl").open()]
    for row in rows:
        Path(row["path"]).write_bytes(b"not audio at all")
    with pytest.raises(T.TrainingFailed, match="cannot be decoded"):
        T.launch(params, "full", resume=True, progress=False)
