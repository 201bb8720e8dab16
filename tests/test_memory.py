"""Per-GPU memory estimate: exact parameter counts, the paper arithmetic, and what each knob saves."""

from __future__ import annotations

import pytest

from silicon_sing import memory as mem
from silicon_sing.models import melody_config, nano_config, nano_musicgen


@pytest.fixture(scope="module")
def melody() -> mem.ModelShape:
    return mem.model_shape(melody_config())


def test_parameter_count_is_exact_for_a_built_model() -> None:
    shape = mem.model_shape(nano_config())
    assert shape.lm_parameters == sum(p.numel() for p in nano_musicgen(seed=0).lm.parameters())


def test_musicgen_melody_shape(melody: mem.ModelShape) -> None:
    assert melody.lm_parameters == 1_385_625_600  # LM + T5 and chroma projections (DESIGN.md)
    assert (melody.num_layers, melody.dim, melody.n_q, melody.card, melody.frame_rate) == (48, 1536, 4, 2048, 50.0)
    assert 1_750 <= melody.tokens(30.0) <= 1_850  # 1,500 audio frames + ~235 chroma frames + caption tokens


def test_paper_recipe_on_eight_gpus(melody: mem.ModelShape) -> None:
    n = melody.lm_parameters
    plain = mem.estimate(melody, world_size=8, batch_per_gpu=1, seconds=30.0)
    assert plain.weights == plain.gradients == 4 * n and plain.optimizer_states == 12 * n  # fp32, 3 D-Adapt states
    assert plain.ddp_buckets == 0  # gradient_as_bucket_view
    assert 30 * mem.GIB < plain.total < 40 * mem.GIB
    ckpt = mem.estimate(melody, 8, 1, 30.0, activation_checkpointing=True)
    assert ckpt.activations < plain.activations / 5 and ckpt.weights == plain.weights
    fsdp = mem.estimate(melody, 8, 1, 30.0, fsdp=True)
    assert fsdp.optimizer_states == pytest.approx(plain.optimizer_states / 8)
    assert fsdp.total < plain.total / 3
    assert mem.estimate(melody, 1, 1, 30.0, fsdp=True).optimizer_states == plain.optimizer_states  # nothing to shard
    assert mem.estimate(melody, 8, 2, 30.0).activations == pytest.approx(2 * plain.activations)


def test_check_fits_names_the_knobs_that_help(melody: mem.ModelShape) -> None:
    plain = mem.estimate(melody, 8, 1, 30.0)
    mem.check_fits(plain, 48 * mem.GIB)
    with pytest.raises(mem.DoesNotFit) as err:
        mem.check_fits(plain, 24 * mem.GIB)
    msg = str(err.value)
    assert "train.fsdp: true" in msg and "(fits)" in msg and "24.0 GiB" in msg and "train.batch_size" in msg
    assert "activation_checkpointing: true ->" in msg and "still too large" in msg  # it alone does not suffice


def test_describe_lists_every_component(melody: mem.ModelShape) -> None:
    text = mem.estimate(melody, 8, 1, 30.0).describe()
    for part in ("weights", "gradients", "DDP buckets", "optimizer states (dadam)", "activations (48 layers",
                 "total per GPU"):
        assert part in text


def test_table_has_one_row_per_knob_combination(melody: mem.ModelShape) -> None:
    rows = mem.table(melody, 8, 1, 30.0)
    assert [(r["fsdp"], r["activation checkpointing"]) for r in rows] == [
        (False, False), (False, True), (True, False), (True, True)]
    assert rows[0]["total per GPU"] > rows[1]["total per GPU"] > rows[2]["total per GPU"] > rows[3]["total per GPU"]
    assert rows[0]["optimizer"] == pytest.approx(3 * 4 * melody.lm_parameters / mem.GIB, abs=0.05)


def test_the_released_melody_shape_is_what_the_builder_counts(melody: mem.ModelShape) -> None:
    # the reproduce chapter and the CLI read the constant, so that they need neither torch nor audiocraft
    assert mem.MUSICGEN_MELODY == melody


def test_the_paper_recipe_table_needs_neither_torch_nor_audiocraft() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "from silicon_sing.memory import MUSICGEN_MELODY, table\n"
            "rows = table(MUSICGEN_MELODY, world_size=8, batch_per_gpu=1, seconds=30.0)\n"
            "assert len(rows) == 4, rows\n"
            "print(sorted(m for m in ('torch', 'audiocraft') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
