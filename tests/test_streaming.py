"""Generation with past keys and values kept in place: the logits of a whole-sequence forward, layers restored."""

from __future__ import annotations

import copy

import pytest
import torch

from silicon_sing.models import build_from_config, cached_kv_attention, load_model, nano_config
from silicon_sing.models import streaming as S


def _lm(positional_embedding: str, seed: int = 0, **transformer: object) -> torch.nn.Module:
    cfg = copy.deepcopy(nano_config(dim=32, num_layers=2, num_heads=4, card=64, text_bins=256))
    cfg.transformer_lm.positional_embedding = positional_embedding  # rope: the shipped nano LM's
    cfg.transformer_lm.update(transformer)
    lm = build_from_config(cfg, seed=seed).lm.eval()
    for p in lm.parameters():  # an init that does not make every position look alike
        p.data.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return lm


def _conditions(lm: torch.nn.Module, batch: int) -> dict:
    from audiocraft.modules.conditioners import ConditioningAttributes

    provider = lm.condition_provider
    return provider(provider.tokenize([ConditioningAttributes(text={"description": "drums"})] * batch))


def _streamed(lm: torch.nn.Module, codes: torch.Tensor, conditions: dict, prompt: int) -> torch.Tensor:
    """Logits ``[B, K, T, card]``: the first ``prompt`` steps at once, then one step at a time, as generation does."""
    with lm.streaming():
        out = [lm(codes[..., :prompt], [], condition_tensors=conditions)]
        out += [lm(codes[..., i:i + 1], [], condition_tensors=conditions) for i in range(prompt, codes.shape[-1])]
    return torch.cat(out, dim=-2)


@pytest.mark.parametrize("positional_embedding", ["rope", "sin"])
def test_kept_keys_and_values_stream_the_logits_of_a_whole_sequence_forward(positional_embedding: str) -> None:
    lm = _lm(positional_embedding)
    codes = torch.randint(0, 64, (3, lm.n_q, 45), generator=torch.Generator().manual_seed(0))
    provider = lm.condition_provider
    from audiocraft.modules.conditioners import ConditioningAttributes

    attrs = [ConditioningAttributes(text={"description": d}) for d in ("drums and bass", "a sung line", None)]
    conditions = provider(provider.tokenize(attrs))
    with torch.no_grad():
        whole = lm(codes, [], condition_tensors=conditions)
        theirs = _streamed(lm, codes, conditions, prompt=20)
        with cached_kv_attention(lm, min_capacity=8) as switched:  # 20 steps, then growing to 40, then 80
            ours = _streamed(lm, codes, conditions, prompt=20)
            assert torch.allclose(lm(codes, [], condition_tensors=conditions), whole)  # not streaming: audiocraft's
    assert switched == 2  # each layer's self-attention; its cross-attention on the caption runs audiocraft's code
    scale = whole.abs().max()
    assert (ours - whole).abs().max() < 1e-5 * scale, (ours - whole).abs().max()
    assert (theirs - whole).abs().max() < 1e-5 * scale  # what audiocraft streams, for the record
    assert not any("forward" in vars(m) for m in lm.modules())  # restored


@pytest.mark.parametrize("two_step_cfg", [False, True])
def test_generations_in_one_block_sample_what_audiocraft_samples(two_step_cfg: bool) -> None:
    """Greedy, so that only the arithmetic decides; two generations in one block (a continuation longer than the
    model's span makes two), and guidance in one batch or in two steps (which swaps the streaming states)."""
    from audiocraft.modules.conditioners import ConditioningAttributes

    lm = _lm("rope", xpos=False)
    prompt = torch.randint(0, 64, (3, lm.n_q, 20), generator=torch.Generator().manual_seed(0))

    def attrs() -> list:
        return [ConditioningAttributes(text={"description": d}) for d in ("drums and bass", "a sung line", None)]

    def generate() -> torch.Tensor:
        return lm.generate(prompt, attrs(), max_gen_len=60, use_sampling=False, cfg_coef=3.0, two_step_cfg=two_step_cfg)

    with torch.no_grad():
        theirs = generate()
        with cached_kv_attention(lm) as switched:
            ours = [generate(), generate()]
    assert switched == 2
    assert torch.equal(ours[0], theirs) and torch.equal(ours[1], theirs)


def test_memory_efficient_layers_are_left_to_audiocraft() -> None:
    """audiocraft makes a memory-efficient layer custom too; it runs torch's fused kernel (musicgen-melody's layers)."""
    assert S.switchable(_lm("rope", memory_efficient=True).transformer.layers[0].self_attn) is False
    from silicon_sing.models import melody_config

    cfg = melody_config(dim=32, num_layers=1, num_heads=4, card=64)
    assert cfg.transformer_lm.memory_efficient  # what the released model is built with


def test_a_block_inside_another_leaves_the_layers_to_the_outer_one() -> None:
    lm = _lm("rope")
    codes = torch.randint(0, 64, (1, lm.n_q, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), cached_kv_attention(lm) as outer:
        with cached_kv_attention(lm) as inner:
            lm(codes, [], condition_tensors=_conditions(lm, 1))  # not streaming: audiocraft's forward, no recursion
        assert (outer, inner) == (2, 0)
        assert sum("forward" in vars(m) for m in lm.modules()) == 2  # still switched
    assert not any("forward" in vars(m) for m in lm.modules())


def test_entering_in_the_middle_of_a_streaming_session_is_refused() -> None:
    lm = _lm("rope")
    codes = torch.randint(0, 64, (1, lm.n_q, 12), generator=torch.Generator().manual_seed(0))
    conditions = _conditions(lm, 1)
    with torch.no_grad(), lm.streaming():
        lm(codes[..., :8], [], condition_tensors=conditions)  # audiocraft keeps these 8 steps itself
        with cached_kv_attention(lm), pytest.raises(RuntimeError, match="middle of a streaming session"):
            lm(codes[..., 8:9], [], condition_tensors=conditions)


def test_layers_are_restored_after_an_error() -> None:
    lm = _lm("rope")
    with pytest.raises(RuntimeError, match="boom"), cached_kv_attention(lm):
        assert sum("forward" in vars(m) for m in lm.modules()) == 2
        raise RuntimeError("boom")
    assert not any("forward" in vars(m) for m in lm.modules())


def test_layers_the_cache_does_not_cover_are_left_to_audiocraft() -> None:
    lm = _lm("rope")
    lm.transformer.layers[0].self_attn.past_context = 16  # a sliding window: audiocraft drops keys out of it
    with cached_kv_attention(lm) as switched:
        assert switched == 1
        assert "forward" not in vars(lm.transformer.layers[0].self_attn)


def test_the_shipped_nano_lm_streams_its_whole_sequence_logits_past_the_first_buffer() -> None:
    """The shipped weights (rope, 8 codebooks), a 2-s prompt at 100 Hz and steps past :data:`MIN_CAPACITY`.

    Sampled tokens are not compared: a rounding difference can flip one (1 of the smoke book's 126
    continuations differed), and everything after it in that clip then differs too.
    """
    from audiocraft.modules.conditioners import ConditioningAttributes

    lm = load_model("nano", seed=0).lm.eval()
    codes = torch.randint(0, lm.card, (2, lm.n_q, S.MIN_CAPACITY + 12), generator=torch.Generator().manual_seed(0))
    provider = lm.condition_provider
    conditions = provider(provider.tokenize([ConditioningAttributes(text={"description": "drums, bass and keys"})] * 2))
    with torch.no_grad():
        whole = lm(codes, [], condition_tensors=conditions)
        with cached_kv_attention(lm):
            ours = _streamed(lm, codes, conditions, prompt=200)
    assert (ours - whole).abs().max() < 1e-5 * whole.abs().max(), (ours - whole).abs().max()
