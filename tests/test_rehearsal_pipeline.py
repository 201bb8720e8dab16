"""The rehearsal: ``make rehearsal`` runs the paper profile's code path offline, and what it must show.

One run of the Makefile target (caches + notebooks 01–06 with ``params/rehearsal.yaml``) into a
temporary run dir; the tests then read what it left. Loading and generation checks run in fresh
processes whose environment only adds the rehearsal caches' variables, as a user's shell would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from silicon_sing.params import CATEGORIES, Params, load_params
from silicon_sing.rehearsal import rehearsal_env

REPO = Path(__file__).resolve().parents[1]
MELODY_REPO = "models--facebook--musicgen-melody"


@pytest.fixture(scope="module")
def rehearsal(rehearsal_job) -> tuple[Params, dict[str, str]]:
    """``make rehearsal`` (conftest's session job, which may already have run beside the smoke notebooks)."""
    code = rehearsal_job.wait()
    out = rehearsal_job.log.read_text(errors="replace")
    assert code == 0, f"make rehearsal failed (log: {rehearsal_job.log}):\n{out[-4000:]}"
    return (load_params(REPO / "params" / "rehearsal.yaml", {"run_dir": str(rehearsal_job.run_dir)}),
            rehearsal_env(rehearsal_job.cache))


def _in_fresh_process(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in a new interpreter with the rehearsal's variables; return its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONWARNINGS": "ignore"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_make_rehearsal_runs_every_notebook(rehearsal: tuple[Params, dict[str, str]]) -> None:
    params, env = rehearsal
    assert set(env) >= {"HF_HOME", "TORCH_HOME", "HF_HUB_OFFLINE"} and env["HF_HUB_OFFLINE"] == "1"
    timings = json.loads((params.run.notebooks / "timings.json").read_text())
    names = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(timings) == names and all(t["ok"] for t in timings.values())
    for name in names:
        doc = nbformat.read(params.run.notebooks / name, as_version=4)
        assert not [o for c in doc.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.slow
def test_training_moved_every_lm_weight_and_kept_fp32(rehearsal: tuple[Params, dict[str, str]]) -> None:
    """No silent no-op: each fine-tune differs from the hub weights in every tensor; nothing is fp16."""
    params, env = rehearsal
    trainable = set(json.loads(_in_fresh_process(  # the LM's parameters (not buffers such as the chroma window)
        "import json\nfrom audiocraft.models import loaders\n"
        f"lm = loaders.load_lm_model({str(params.run.checkpoints / 'full' / 'export' / 'state_dict.bin')!r})\n"
        "print(json.dumps([n for n, p in lm.named_parameters() if p.requires_grad]))\n", env).splitlines()[-1]))
    assert len(trainable) > 20
    snapshots = Path(env["HF_HOME"]) / "hub" / MELODY_REPO / "snapshots"
    start = torch.load(next(snapshots.glob("*/state_dict.bin")), map_location="cpu", weights_only=True,
                       mmap=True)["best_state"]
    for category in CATEGORIES:
        export = params.run.checkpoints / category / "export"
        state = torch.load(export / "state_dict.bin", map_location="cpu", weights_only=True, mmap=True)["best_state"]
        assert sorted(state) == sorted(start)
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
        same = [k for k in trainable if torch.equal(state[k], start[k].float())]
        assert not same, f"{category}: {len(same)} of {len(state)} LM tensors never moved, e.g. {same[:3]}"
        done = json.loads((export / "done.json").read_text())
        assert done["steps"] == params.train.epochs * params.train.updates_per_epoch and done["skipped_steps"] == 0
        assert done["world_size"] == params.train.nproc_per_node


@pytest.mark.slow
def test_t5_and_chroma_conditioners_really_ran(rehearsal: tuple[Params, dict[str, str]]) -> None:
    params, _ = rehearsal
    for category in CATEGORIES:
        done = json.loads((params.run.checkpoints / category / "export" / "done.json").read_text())
        assert done["conditioners"] == {"description": "T5Conditioner", "self_wav": "ChromaStemConditioner"}
        chroma = list((params.run.tokens / category).glob("*/chroma-*/*"))
        n_segments = sum(1 for split in ("train", "valid") for _ in
                         open(params.run.curated / "manifests" / category / split / "data.jsonl"))
        assert len(chroma) == n_segments  # demucs → chroma computed once per training/validation segment
        codes = list((params.run.tokens / category).glob("*/??/*.pt"))
        assert len(codes) == n_segments


@pytest.mark.slow
def test_export_loads_with_audiocraft_alone_and_generates(rehearsal: tuple[Params, dict[str, str]]) -> None:
    params, env = rehearsal
    export = params.run.checkpoints / "full" / "export"
    out = _in_fresh_process(
        "import sys, torch\n"
        "from audiocraft.models import MusicGen\n"
        f"m = MusicGen.get_pretrained({str(export)!r}, device='cpu')\n"
        "m.set_generation_params(duration=0.5)\n"
        "wav = m.generate_with_chroma(['a calm song'], torch.zeros(1, 1, 32000), 32000)\n"
        "assert not any(name.startswith('silicon_sing') for name in sys.modules)\n"
        "print(tuple(wav.shape), type(m.lm.condition_provider.conditioners['description']).__name__)\n", env)
    assert out.split()[-1] == "T5Conditioner" and "(1, 1, 16000)" in out


@pytest.mark.slow
def test_continuations_come_from_the_hub_model_and_the_exports(rehearsal: tuple[Params, dict[str, str]]) -> None:
    from silicon_sing.generate import load_generations

    params, _ = rehearsal
    gens = load_generations(params.run_dir)
    assert {g.system for g in gens} == {"baseline", "fine-tuned"}
    assert {g.model for g in gens if g.system == "baseline"} == {"facebook/musicgen-melody"}
    assert {g.model for g in gens if g.system == "fine-tuned"} == {
        str(params.run.checkpoints / c / "export") for c in CATEGORIES}
    assert all(g.settings["melody_condition"] == "none" for g in gens)


@pytest.mark.slow
def test_the_a_a_control_reseeded_the_hub_model(rehearsal: tuple[Params, dict[str, str]]) -> None:
    """evaluate.null_control (paper: every stem type; rehearsal: the full mix): notebook 04 reseeds the hub baseline."""
    from silicon_sing.generate import BASELINE, RESEEDED, load_generations
    from silicon_sing.metrics.null_control import read_null_control
    from silicon_sing.results import null_control_sentence

    params, _ = rehearsal
    assert params.evaluate.null_control == ["full"]
    reseeded = load_generations(params.run_dir, [RESEEDED])
    baseline = {g.example_id: g for g in load_generations(params.run_dir, [BASELINE]) if g.category == "full"}
    assert sorted(g.example_id for g in reseeded) == sorted(baseline)
    assert {g.model for g in reseeded} == {"facebook/musicgen-melody"}
    assert all(g.seed != baseline[g.example_id].seed for g in reseeded)
    control = read_null_control(params)
    assert control is not None and control.categories == ["full"]
    assert "could not test the intervals" in null_control_sentence(control)  # one test track per artist here
    meta = json.loads(params.run.null_control_metrics.read_text())["meta"]
    assert (meta["kl_backend"], meta["fad_backend"], meta["finetuned"]) == ("passt", "vggish", RESEEDED)
    doc = nbformat.read(params.run.notebooks / "04_evaluate.ipynb", as_version=4)
    shown = "".join(o.get("data", {}).get("text/html", "") for c in doc.cells for o in c.get("outputs", [])
                    if isinstance(o.get("data", {}).get("text/html", ""), str))
    assert "reseeded − baseline" in shown


@pytest.mark.slow
def test_kl_and_fad_come_from_passt_and_vggish(rehearsal: tuple[Params, dict[str, str]]) -> None:
    params, env = rehearsal
    report = json.loads((params.run.metrics / "metrics.json").read_text())
    text = json.dumps(report["meta"])
    assert "passt" in text and "vggish" in text
    assert "passt-s-f128-p16-s10-ap.476-swa.pt" in text and "vggish-10086976.pth" in text  # the cached weights
    assert "random-init" not in text
    cells = report["cells"]
    assert cells and {c["kl_backend"] for c in cells} == {"passt"} and {c["fad_backend"] for c in cells} == {"vggish"}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fsdp_and_activation_checkpointing_at_real_width(rehearsal: tuple[Params, dict[str, str]],
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory knobs on the rehearsal model (gloo, 2 processes): the same model as the DDP run."""
    from silicon_sing import train as T

    params, env = rehearsal
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for part in ("curated", "captions", "tokens"):  # the rehearsal's data and caches, read-only
        (run_dir / part).symlink_to(Path(params.run_dir) / part)
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # for the torchrun workers
    knobs = load_params(REPO / "params" / "rehearsal.yaml", {
        "run_dir": str(run_dir), "train.fsdp": True, "train.activation_checkpointing": True})
    result = T.launch(knobs, "full", progress=False)
    done = T.read_done(knobs, "full")
    assert done["fsdp"] and result.world_size == 2 and result.fingerprint == T.read_done(params, "full")["fingerprint"]
    ddp = torch.load(params.run.checkpoints / "full" / "export" / "state_dict.bin", weights_only=True)["best_state"]
    ours = torch.load(knobs.run.checkpoints / "full" / "export" / "state_dict.bin", weights_only=True)["best_state"]
    assert sorted(ddp) == sorted(ours)
    for k in ddp:
        torch.testing.assert_close(ours[k], ddp[k], rtol=1e-3, atol=1e-5)
