"""A compression model's encode and decode, batched the way its device runs them fastest.

On a CPU, audiocraft's SEANet codecs run a batch *slower* than its clips one by one: their activations at
the audio rate (channels × samples × clips) outgrow the caches. Measured on this project's 2-core machine,
one thread (``benchmarks/bench_generate.py`` reports the ratio on yours): the shipped nano codec decoded 18
clips of 6 s in 13.2 s as one batch and in 7.2 s clip by clip (two threads: 8.6 s and 4.8 s) and encoded
18 prompts of 2 s in 1.55 s and 0.68 s; musicgen-melody's EnCodec architecture decoded 8 clips of 6 s in
11.4–12.3 s and 10.7–11.0 s. Generation decodes every continuation, so on the smoke book this is the
difference between a decoder that takes a third of each batch and one that takes a fifth.

On an accelerator the batch stays whole. Clip by clip, the codes are the batch's and the audio is the batch's
to float rounding (≤ 2e-6 measured): a convolution sums in another order, nothing else changes.

Notebooks: notebooks/03_finetune.ipynb (the token cache), notebooks/04_evaluate.ipynb (continuations)
"""

from __future__ import annotations

import typing as tp

import torch

if tp.TYPE_CHECKING:
    from audiocraft.models import CompressionModel


def _clip_batches(codec: CompressionModel, n: int) -> list[slice]:
    """The slices of a batch of ``n`` clips run together: one per clip on a CPU, the whole batch elsewhere."""
    if n <= 1 or next(iter(codec.parameters())).device.type != "cpu":
        return [slice(0, n)]
    return [slice(i, i + 1) for i in range(n)]


@torch.no_grad()
def codec_encode(codec: CompressionModel, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``codec.encode`` of audio ``[B, C, N]`` on the codec's device: codes ``[B, K, T]`` and scale ``[B, 1]`` or None."""
    device = next(iter(codec.parameters())).device
    parts = [codec.encode(wav[s].to(device)) for s in _clip_batches(codec, wav.shape[0])]
    codes = torch.cat([c for c, _ in parts])
    scales = [s for _, s in parts]
    if all(s is None for s in scales):
        return codes, None
    return codes, torch.cat([s for s in scales if s is not None])


@torch.no_grad()
def codec_decode(codec: CompressionModel, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """``codec.decode`` of codes ``[B, K, T]`` (and scale ``[B, 1]``): audio ``[B, C, N]``."""
    return torch.cat([codec.decode(codes[s], None if scale is None else scale[s])
                      for s in _clip_batches(codec, codes.shape[0])])
