"""Continuations: held-out prompts, identical seeds for both systems, prompt kept, reruns free."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec_spy import CodecBatchSizes
from silicon_sing import generate as G
from silicon_sing.curate import run_curation
from silicon_sing.data import held_out_examples
from silicon_sing.models import export_model, nano_musicgen
from silicon_sing.params import load_params
from stems import tone_stems, write_track

REPO = Path(__file__).resolve().parents[1]


def _run_params(run_dir: Path, stems: Path):
    """The smoke profile on the test stems: 2 s segments, 1 s prompts, batches of 2."""
    return load_params(REPO / "params" / "smoke.yaml", {
        "run_dir": str(run_dir), "curate.data_root": str(stems), "workers": 1,
        "curate.segment_seconds": 2.0, "evaluate.prompt_seconds": 1.0, "evaluate.gen_batch_size": 2})


@pytest.fixture(scope="module")
def curated_run(tmp_path_factory: pytest.TempPathFactory):
    """A curated run (2 artists × 3 tracks, 2 s segments) with a nano 'fine-tuned' export per category."""
    tmp = tmp_path_factory.mktemp("gen")
    for a, artist in enumerate(("Ana", "Bo")):
        for t in range(3):
            write_track(tmp / "stems", artist, f"t{t}", tone_stems(4.2, 32000, 200.0 + 60 * a, seed=a * 3 + t), 32000)
    params = _run_params(tmp / "run", tmp / "stems")
    run_curation(params, progress=False)
    for cat in ("acapella", "instrumental", "full"):
        export_model(nano_musicgen(seed=7), params.run.export(cat))
    return params


def test_examples_are_the_test_split_in_a_fixed_order(curated_run) -> None:
    """Only held-out segments are continued, ordered deterministically, with their captions."""
    ex = held_out_examples(curated_run)
    assert ex and all("/test/" not in e.original for e in ex)  # paths are by category, split is in the record
    from silicon_sing.curate import load_segments

    test_ids = {s.segment_id for s in load_segments(curated_run.run_dir) if s.split == "test"}
    assert {e.example_id for e in ex} == test_ids
    assert ex == held_out_examples(curated_run)


def test_batches_share_a_duration_and_seeds_ignore_the_system(curated_run) -> None:
    """Batches never mix lengths; a batch's seed depends on its examples and the run seed only."""
    ex = held_out_examples(curated_run)
    bs = G.batches(ex, 2)
    assert all(len({e.duration_s for e in b}) == 1 and len(b) <= 2 for b in bs)
    s = G.GenerationSettings.from_params(curated_run)
    assert G.batch_seed(s, bs[0]) == G.batch_seed(s, list(bs[0]))
    assert G.batch_seed(s, bs[0]) != G.batch_seed(s, bs[1])


@pytest.mark.slow
def test_both_systems_continue_every_example_with_the_same_seeds(curated_run) -> None:
    """Files of the segment's length at 32 kHz; same seed per example for baseline and fine-tuned."""
    gens = G.run_generation(curated_run, categories=["acapella"], progress=False)
    by = {(g.system, g.example_id): g for g in gens}
    ids = {e.example_id for e in held_out_examples(curated_run, ["acapella"])}
    assert {k[1] for k in by} == ids and {k[0] for k in by} == {"baseline", "fine-tuned"}
    for i in ids:
        b, f = by[("baseline", i)], by[("fine-tuned", i)]
        assert b.seed == f.seed and b.caption == f.caption and b.settings == f.settings
        assert b.model == "nano" and f.model.endswith("export")
        # the record says which weights, not only the name: "nano" is whatever files the package ships
        assert b.weights == G.weights_fingerprint(curated_run, "baseline", "acapella") != f.weights
        assert f.weights == G.model_fingerprint(f.model)
        x, sr = sf.read(b.generated)
        assert sr == 32000 and len(x) == int(b.duration_s * sr)
        assert json.loads(Path(f.generated).with_suffix(".json").read_text())["system"] == "fine-tuned"
    mtimes = {g.generated: Path(g.generated).stat().st_mtime_ns for g in gens}
    again = G.run_generation(curated_run, categories=["acapella"], progress=False)
    assert {g.generated: Path(g.generated).stat().st_mtime_ns for g in again} == mtimes
    assert len(G.load_generations(curated_run.run_dir)) == len(gens)


@pytest.mark.slow
def test_continuation_starts_with_the_prompt(curated_run) -> None:
    """The returned audio begins with the (codec-reconstructed) prompt, then continues."""
    model = nano_musicgen(seed=3)
    ex = held_out_examples(curated_run, ["instrumental"])[:2]
    s = G.GenerationSettings.from_params(curated_run)
    out = G.continue_batch(model, ex, s, seed=11)
    prompt, target = G.prompt_batch(ex, s.prompt_seconds, model.sample_rate)
    with torch.no_grad():
        codes, _ = model.compression_model.encode(prompt)
        recon = model.compression_model.decode(codes)[:, 0].numpy()
    assert out.shape == (2, target.shape[-1])
    edge = int(0.25 * model.sample_rate)  # the decoder's receptive field straddles the prompt boundary
    np.testing.assert_allclose(out[:, : prompt.shape[-1] - edge], recon[:, : prompt.shape[-1] - edge], atol=1e-4)
    again = G.continue_batch(model, ex, s, seed=11)
    np.testing.assert_array_equal(out, again)
    assert not np.allclose(out, G.continue_batch(model, ex, s, seed=12))


def test_missing_fine_tuned_model_names_the_notebook(curated_run, tmp_path: Path) -> None:
    """Without an export, the error says which stage to run."""
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="03_finetune"):
        G.model_for(params, "fine-tuned", "acapella")


def test_melody_condition_is_validated(curated_run) -> None:
    """Only 'none' and 'target' are accepted, so the book can say which was used."""
    with pytest.raises(ValueError, match="melody_condition"):  # refused on load (ParamsError) already
        bad = load_params(REPO / "params" / "smoke.yaml", {"evaluate.melody_condition": "chroma"})
        G.GenerationSettings.from_params(bad)


def test_a_moved_run_dir_keeps_its_continuations_and_points_into_its_new_place(curated_run, tmp_path: Path) -> None:
    """A run dir renamed or copied to another disk or machine must not generate again (on the paper profile that is
    GPU-hours), and its records must name the files where they are now. Before, the fingerprint hashed the original
    segment's absolute path, and the records kept the old absolute paths."""
    import shutil

    G.run_generation(curated_run, categories=["acapella"], systems=(G.BASELINE,), progress=False)
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(curated_run.run_dir, moved, symlinks=True)
    params = _run_params(moved, Path(curated_run.curate.data_root))
    wavs = sorted((moved / "generations" / G.BASELINE).rglob("*.wav"))
    mtimes = {p: p.stat().st_mtime_ns for p in wavs}
    assert wavs
    again = G.run_generation(params, categories=["acapella"], systems=(G.BASELINE,), progress=False)
    assert {p: p.stat().st_mtime_ns for p in wavs} == mtimes  # nothing generated again
    loaded = G.load_generations(moved, (G.BASELINE,))
    assert len(loaded) == len(again) == len(wavs)
    for g in (*again, *loaded):
        assert Path(g.generated).is_relative_to(moved) and Path(g.generated).exists(), g.generated
        assert Path(g.original).is_relative_to(moved) and Path(g.original).exists(), g.original


@pytest.mark.slow
def test_ranks_share_the_batches_without_overlap(curated_run, tmp_path: Path) -> None:
    """Under torchrun each rank takes every world_size-th batch; together they cover every example."""
    params = load_params(REPO / "params" / "smoke.yaml", {**curated_run.overrides, "run_dir": str(tmp_path)})
    import shutil

    shutil.copytree(curated_run.run.curated, params.run.curated)
    ex = held_out_examples(params, ["full"])
    model = nano_musicgen(seed=0)
    got = [G.generate_system(params, "baseline", "full", ex, model=model, rank=r, world_size=2, progress=False)
           for r in range(2)]
    ids = [{g.example_id for g in part} for part in got]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {e.example_id for e in ex}


@pytest.mark.slow
def test_ranks_deal_batches_over_every_system_and_category(curated_run, tmp_path: Path) -> None:
    """One batch per (system, category), as the smoke profile's 18 examples in batches of 18: the batches are dealt
    over the run's whole list, so the second rank gets the second (system, category), not nothing."""
    params = load_params(REPO / "params" / "smoke.yaml", {**curated_run.overrides, "run_dir": str(tmp_path),
                                                          "evaluate.gen_batch_size": 64})
    import shutil

    shutil.copytree(curated_run.run.curated, params.run.curated)
    ex = held_out_examples(params, ["acapella", "full"])
    offsets = G.batch_offsets(params, ex, (G.BASELINE,), ("acapella", "full"))
    assert offsets == {(G.BASELINE, "acapella"): 0, (G.BASELINE, "full"): 1}
    model = nano_musicgen(seed=0)
    got = {(r, c): G.generate_system(params, G.BASELINE, c, ex, model=model, rank=r, world_size=2, progress=False,
                                     offset=offsets[G.BASELINE, c]) for r in range(2) for c in ("acapella", "full")}
    assert {k: len(v) for k, v in got.items()} == {(0, "acapella"): sum(e.category == "acapella" for e in ex),
                                                   (0, "full"): 0, (1, "acapella"): 0,
                                                   (1, "full"): sum(e.category == "full" for e in ex)}


@pytest.mark.slow
def test_one_batch_left_is_generated_here_not_under_torchrun(curated_run, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting torchrun costs its processes' imports (about 10 s on 2 cores): with gen_nproc 2 and one batch left
    (the smoke profile's A/A control, after notebook 04's own batches), this process generates it."""
    import shutil

    params = load_params(REPO / "params" / "smoke.yaml", {**curated_run.overrides, "run_dir": str(tmp_path),
                                                          "evaluate.gen_batch_size": 64, "evaluate.gen_nproc": 2})
    shutil.copytree(curated_run.run.curated, params.run.curated)
    assert G.pending_batches(params, ["acapella"], (G.BASELINE, G.RESEEDED)) == 2
    G.generate_system(params, G.BASELINE, "acapella", progress=False)
    assert G.pending_batches(params, ["acapella"], (G.BASELINE, G.RESEEDED)) == 1

    def no_torchrun(*args, **kwargs):
        raise AssertionError("torchrun launched for a single batch")

    monkeypatch.setattr(G, "launch", no_torchrun)
    gens = G.run_generation(params, ["acapella"], systems=(G.BASELINE, G.RESEEDED), progress=False)
    assert {g.system for g in gens} == {G.BASELINE, G.RESEEDED}
    assert G.pending_batches(params, ["acapella"], (G.BASELINE, G.RESEEDED)) == 0


@pytest.mark.timeout(600)
def test_two_torchrun_processes_write_what_one_process_writes(curated_run, tmp_path: Path) -> None:
    """evaluate.gen_nproc > 1 (the paper profile on a GPU node): ranks share the batches over torchrun and return
    only what was asked for, the baseline and the A/A control's reseeded copy alike, and write what one process does."""
    import shutil

    runs = {}
    for n in (1, 2):
        params = load_params(REPO / "params" / "smoke.yaml", {**curated_run.overrides, "run_dir": str(tmp_path / str(n)),
                                                              "evaluate.gen_nproc": n})
        shutil.copytree(curated_run.run.curated, params.run.curated)
        runs[n] = G.run_generation(params, ["acapella"], systems=(G.BASELINE, G.RESEEDED), progress=False)
    ex = held_out_examples(curated_run, ["acapella"])
    assert len(G.batches(ex, curated_run.evaluate.gen_batch_size)) >= 2  # both ranks had work
    key = {n: {(g.system, g.example_id): g for g in gens} for n, gens in runs.items()}
    assert sorted(key[2]) == sorted(key[1]) == sorted((s, e.example_id) for s in (G.BASELINE, G.RESEEDED) for e in ex)
    for k, one in key[1].items():
        two = key[2][k]
        assert (two.seed, two.model, two.caption) == (one.seed, one.model, one.caption)
        # the same tokens: the clips agree to the 16-bit rounding of the decoder's float output
        np.testing.assert_allclose(sf.read(two.generated)[0], sf.read(one.generated)[0], atol=2 / 2**15)


def test_the_paper_profile_generates_on_every_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from silicon_sing.generate import generation_processes

    paper = load_params("params/paper.yaml")
    assert paper.evaluate.gen_nproc == 0  # one process per visible GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert generation_processes(paper) == 8
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert generation_processes(paper) == 1  # no GPU: this process
    assert generation_processes(load_params("params/smoke.yaml")) == 2  # two CPU processes, one thread each
    assert generation_processes(load_params("params/smoke.yaml", {"evaluate.gen_nproc": 3})) == 3


def test_codec_round_trip_is_the_baseline_codec_at_the_callers_rate(curated_run) -> None:
    """The reference beside the continuations: the shipped codec, any input rate, the input's length back."""
    from silicon_sing.pretrain import load_shipped, si_snr_db

    params = curated_run
    assert params.train.model == "nano"
    model = load_shipped()
    round_trip = G.codec_round_trip(params, model)
    t = np.arange(int(2.5 * 32000)) / 32000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32)
    out = round_trip(y, 32000)
    assert out.shape == y.shape and out.dtype == np.float32
    snr = float(si_snr_db(torch.from_numpy(out)[None, None], torch.from_numpy(y)[None, None]))
    assert snr > 3.0, snr  # a trained codec, not silence or noise
    y16 = y[::2].copy()
    assert round_trip(y16, 16000).shape == y16.shape  # resampled in and back out
    loaded = G.codec_round_trip(params)(y, 32000)  # loads the baseline itself when not given one
    assert np.allclose(loaded, out, atol=1e-4)


def test_round_trips_are_kept_by_codec_weights_and_audio_and_a_kept_one_loads_no_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 05 plays round trips of originals notebook 04 has just measured: from the run's cache, with neither a
    model load nor torch's import (~7 s of 05 on 2 cores). Other audio or other weights are computed afresh."""
    import subprocess
    import sys

    from silicon_sing import models

    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path / "run")})
    y = (0.2 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    first = G.codec_round_trip(params)(y, 32000)
    [kept] = params.run.round_trips.glob("*.npy")
    kept.write_bytes(kept.read_bytes()[:40])  # truncated, as by a full disk
    with pytest.warns(UserWarning, match=f"unreadable cache entry {kept}.*recomputing"):
        np.testing.assert_array_equal(G.codec_round_trip(params)(y, 32000), first)
    np.testing.assert_array_equal(np.load(kept), first)  # and kept again

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load_model", no_model)
    np.testing.assert_array_equal(G.codec_round_trip(params)(y, 32000), first)
    with pytest.raises(AssertionError, match="a model was loaded"):
        G.codec_round_trip(params)(y * 0.5, 32000)  # other audio
    with pytest.raises(AssertionError, match="a model was loaded"):  # another baseline (a fresh pre-training, say)
        G.codec_round_trip(load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path / "run"),
                                                                        "train.model": "nano-random"}))(y, 32000)
    np.save(tmp_path / "y.npy", y)
    code = (f"import sys, numpy as np\nfrom silicon_sing.generate import codec_round_trip\n"
            f"from silicon_sing.params import load_params\n"
            f"P = load_params({str(REPO / 'params' / 'smoke.yaml')!r}, {{'run_dir': {str(tmp_path / 'run')!r}}})\n"
            f"out = codec_round_trip(P)(np.load({str(tmp_path / 'y.npy')!r}), 32000)\n"
            f"np.save({str(tmp_path / 'out.npy')!r}, out)\n"
            f"print(sorted(m for m in ('torch', 'audiocraft') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), first)
    # a given model is not the params' baseline: never kept, never taken from what is kept
    monkeypatch.undo()
    G.codec_round_trip(params, nano_musicgen(seed=1))(y, 32000)
    assert len(list(params.run.round_trips.glob("*.npy"))) == 1


def test_sampling_is_described_and_a_departure_from_musicgen_defaults_is_named(tmp_path: Path) -> None:
    from silicon_sing.generate import GenerationSettings
    from silicon_sing.params import MUSICGEN_SAMPLING

    paper = GenerationSettings.from_params(load_params(REPO / "params" / "paper.yaml", {"run_dir": str(tmp_path)}))
    assert paper.departure() == "MusicGen's defaults" and paper.describe() == (
        f"top-k {MUSICGEN_SAMPLING['top_k']}, temperature 1, classifier-free guidance 3")
    smoke = GenerationSettings.from_params(load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path)}))
    assert smoke.temperature < 1 and "temperature 0.5" in smoke.describe()
    assert smoke.departure().startswith("not MusicGen's defaults") and "sampling_sweep.py" in smoke.departure()
    greedy = dataclasses.replace(smoke, use_sampling=False)
    assert greedy.describe().startswith("greedy") and "not MusicGen's" in greedy.departure()


def test_baseline_continuations_are_fingerprinted_by_the_shipped_nano_files(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``train.model: nano`` names the shipped weights, which a re-pretraining replaces (stop 24 did): the baseline's
    fingerprint must follow the files, or a rerun on an old run dir keeps the old model's continuations as done
    beside a fine-tune of the new one. It was the constant ``name:nano`` before."""
    from silicon_sing import model_names

    nano = tmp_path / "nano"
    nano.mkdir()
    for f in ("state_dict.bin", "compression_state_dict.bin"):
        (nano / f).write_bytes((model_names.NANO_DIR / f).read_bytes())
    monkeypatch.setattr(model_names, "NANO_DIR", nano)
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path / "run")})
    before = G.weights_fingerprint(params, G.BASELINE, "instrumental")
    assert before == G.weights_fingerprint(params, G.RESEEDED, "acapella")  # the same weights, every category
    assert before == G.model_fingerprint(str(nano))
    blob = bytearray((nano / "state_dict.bin").read_bytes())
    blob[-100] ^= 1
    (nano / "state_dict.bin").write_bytes(bytes(blob))
    assert G.weights_fingerprint(params, G.BASELINE, "instrumental") != before


@pytest.mark.parametrize("renormalize", [False, True])
def test_on_a_cpu_the_codec_runs_a_batch_clip_by_clip_with_the_batchs_result(monkeypatch: pytest.MonkeyPatch,
                                                                            renormalize: bool) -> None:
    """A SEANet codec on a CPU runs a batch slower than its clips one by one (benchmarks/bench_generate.py): the
    helpers split it there, and the codes (and a renormalising codec's per-clip scales) are the batch's, the audio the
    batch's to float rounding."""
    from audiocraft.models import builders

    from silicon_sing.models import codec_decode, codec_encode, nano_config

    cfg = nano_config()
    cfg.encodec.renormalize = renormalize
    torch.manual_seed(3)
    codec = builders.get_compression_model(cfg).eval()
    x = torch.from_numpy(np.stack([g * tone_stems(1.0, 32000, f, seed=i, stereo=False)["full"][0]
                                   for i, (f, g) in enumerate(((220, 1.0), (330, 0.1), (440, 2.0)))]))
    x = x[:, None].float()
    with torch.no_grad():
        codes, scale = codec.encode(x)
        whole = codec.decode(codes, scale)
    assert (scale is not None) == renormalize
    sizes = CodecBatchSizes(codec, monkeypatch)
    got_codes, got_scale = codec_encode(codec, x)
    got = codec_decode(codec, got_codes, got_scale)
    assert sizes.encoded == [1, 1, 1] and sizes.decoded == [1, 1, 1]
    assert torch.equal(got_codes, codes)
    if renormalize:
        torch.testing.assert_close(got_scale, scale, atol=1e-6, rtol=1e-6)
    else:
        assert got_scale is None
    torch.testing.assert_close(got, whole, atol=1e-5, rtol=0)


def test_generation_keeps_the_past_keys_and_values_in_place(curated_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token loop runs models.streaming's attention (~2x faster for the nano LM), for every step of every layer."""
    from silicon_sing.models import streaming

    calls = []
    original = streaming._cached_forward

    def counted(self, *args, **kwargs):
        calls.append(self._streaming_state.get("kv_steps"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(streaming, "_cached_forward", counted)
    model = nano_musicgen(seed=3)
    ex = held_out_examples(curated_run, ["instrumental"])[:2]
    s = G.GenerationSettings.from_params(curated_run)
    G.continue_batch(model, ex, s, seed=11)
    layers, frames = len(model.lm.transformer.layers), int(model.frame_rate * ex[0].duration_s)
    prompt = int(model.frame_rate * s.prompt_seconds)
    # per layer, one call per step after the prompt (the frames and the delay pattern's n_q - 1 more), the first
    # of which takes the prompt's frames at once; each sees every step before it
    per_layer = frames - prompt + model.lm.n_q - 1
    assert len(calls) == layers * per_layer, (len(calls), layers, per_layer)
    seen = [None if c is None else int(c) for c in calls[::layers]]  # steps kept when each call began
    assert seen[0] is None and seen[1] >= prompt and seen[1:] == list(range(seen[1], seen[1] + per_layer - 1))
    assert not any("forward" in vars(m) for m in model.lm.modules())


@pytest.mark.slow
def test_continuations_are_decoded_clip_by_clip_on_a_cpu(curated_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation decodes its tokens through the per-clip helper: on a CPU no batch reaches the decoder whole."""
    model = nano_musicgen(seed=3)
    ex = held_out_examples(curated_run, ["instrumental"])[:2]
    s = G.GenerationSettings.from_params(curated_run)
    sizes = CodecBatchSizes(model.compression_model, monkeypatch)
    ours = G.continue_batch(model, ex, s, seed=11)  # also sets the model's generation parameters
    assert sizes.decoded == [1, 1], sizes.decoded
    monkeypatch.undo()
    # audiocraft's own continuation, decoded as one batch, under the same seed: the same audio to float rounding
    prompt, target = G.prompt_batch(ex, s.prompt_seconds, model.sample_rate)
    torch.manual_seed(11)
    with torch.no_grad():
        theirs = model.generate_continuation(prompt, model.sample_rate, [e.caption or None for e in ex])
    np.testing.assert_allclose(ours, theirs[:, 0, : target.shape[-1]].numpy(), atol=1e-5)


def test_generation_ranks_share_the_cores_unless_the_user_set_the_threads(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    """Two CPU ranks on this machine get one OpenMP thread each, not torchrun's or the machine's default; a user's own
    OMP_NUM_THREADS is passed on as it is."""
    from silicon_sing.machine import usable_cpus
    from silicon_sing.torchrun import JobOutcome

    seen: list[dict[str, str]] = []

    def fake_run(cmd, env=None, **kwargs):
        seen.append(dict(env or {}))
        return JobOutcome(0, "", "")

    monkeypatch.setattr(G.torchrun, "run", fake_run)
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path)})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    G.launch(params, ["acapella"], [G.BASELINE], processes=2)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    G.launch(params, ["acapella"], [G.BASELINE], processes=2)
    assert [e["OMP_NUM_THREADS"] for e in seen] == [str(max(1, usable_cpus() // 2)), "3"]
