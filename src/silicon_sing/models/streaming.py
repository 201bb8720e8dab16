"""Generation with the past keys and values kept in place (audiocraft's custom attention, streaming).

audiocraft 1.3.0's streaming self-attention appends each step's key and value to the past ones with
``torch.cat`` (a new tensor per layer and step), then its einsum copies both again into the layout
its batched product needs. For the nano LM (192 wide, 3 layers, 600 steps for 18 clips with
guidance) those copies were 41 % of the token loop's time on a CPU (``aten::copy_`` + ``aten::cat``,
profiled). :func:`cached_kv_attention` keeps them instead in one buffer per layer, ``[B, H, capacity,
D]``, written in place, and multiplies the queries with views of it, which need no copy.

The rotary position of a step is the number of steps cached, so this path does not have the
streaming offset error of audiocraft's memory-efficient layout (``models.configs.nano_config``).
The arithmetic is audiocraft's custom einsum path up to float rounding: on the shipped nano LM, logits
agree with a whole-sequence forward to 1e-6 of their scale (the tests allow 1e-5). Rounding can still flip a sampled token, and the
rest of that clip then differs: 1 of the smoke book's 126 continuations did. The token loop of the
smoke profile's batch (18 clips, 6 s) took 8.3 s instead of 16.1 (2 threads; 1.7-2.3x over runs,
``benchmarks/bench_generate.py``).

Only layers audiocraft would run through its custom einsum streaming path with nothing more are
switched: causal self-attention, ``custom`` and not ``memory_efficient`` (audiocraft makes every
memory-efficient layer custom too; those run torch's fused kernel, musicgen-melody's among them), no
``past_context`` window, no key/value repetition, no query/key normalisation, no
``attention_as_float32``, ``forward`` not overridden. Others (cross-attention, the paper profile's
model) run audiocraft's own code. A layer already switched by an enclosing block is left to it.

Notebook: notebooks/04_evaluate.ipynb (generation)
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

MIN_CAPACITY = 256  # steps a layer's buffer holds at first; it doubles when a generation outgrows it


def switchable(module: nn.Module) -> bool:
    """Whether ``module`` is a self-attention layer :func:`cached_kv_attention` runs (see the module docstring)."""
    from audiocraft.modules.transformer import StreamingMultiheadAttention  # lazy: audiocraft is slow to import

    return (isinstance(module, StreamingMultiheadAttention)
            and type(module).forward is StreamingMultiheadAttention.forward and "forward" not in vars(module)
            and module.custom and not module.memory_efficient and module.causal and not module.cross_attention
            and module.past_context is None and module.kv_repeat == 1 and not module.qk_layer_norm
            and not module.attention_as_float32)


def _grown(state: dict[str, torch.Tensor], like: torch.Tensor, end: int, min_capacity: int) -> None:
    """Make ``state``'s key and value buffers (``[B, H, capacity, D]``, like ``like``) hold ``end`` steps."""
    old = state.get("kv_keys")
    have = 0 if old is None else old.shape[2]
    if have >= end:
        return
    cap = max(end, 2 * have, min_capacity)
    for name in ("kv_keys", "kv_values"):
        buf = like.new_empty(like.shape[0], like.shape[1], cap, like.shape[3])
        if old is not None:
            buf[:, :, :have] = state[name]
        state[name] = buf


def _cached_forward(self: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    key_padding_mask: Any = None, need_weights: bool = False, attn_mask: Any = None,
                    average_attn_weights: bool = True, is_causal: bool = False) -> tuple[torch.Tensor, None]:
    """``StreamingMultiheadAttention.forward`` for one streaming step ``query [B, t, dim]`` (``key is value is query``)."""
    import torch

    if not self._is_streaming or self.training or attn_mask is not None:
        return self._kv_audiocraft_forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                           average_attn_weights, is_causal)
    if not (query is key and key is value):
        raise ValueError("kept keys and values are for self-attention: query, key and value must be one tensor")
    state, (b, t, _) = self._streaming_state, query.shape
    if "past_keys" in state:  # audiocraft streamed before this block began: its keys are not in our buffer
        raise RuntimeError("cached_kv_attention entered in the middle of a streaming session; enter it before "
                           "lm.streaming() (generate.continue_batch does)")
    projected = torch.nn.functional.linear(query, self.in_proj_weight, self.in_proj_bias)
    q, k, v = projected.view(b, t, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, t, D] each
    start = int(state["kv_steps"]) if "kv_steps" in state else 0
    end = start + t
    if self.rope is not None:
        q, k = self.rope.rotate_qk(q, k, start=start, time_dim=2)
    _grown(state, k, end, self._kv_min_capacity)
    state["kv_keys"][:, :, start:end] = k
    state["kv_values"][:, :, start:end] = v
    state["kv_steps"] = torch.tensor(end)
    keys, values = state["kv_keys"][:, :, :end], state["kv_values"][:, :, :end]
    q = q / q.shape[-1] ** 0.5
    if self.safe_streaming and q.device.type == "cuda":  # as audiocraft: the scores in fp32 under fp16 autocast
        with torch.autocast(device_type="cuda", dtype=torch.float32):
            scores = q @ keys.transpose(-1, -2)  # [B, H, t, end]
    else:
        scores = q @ keys.transpose(-1, -2)
    if t > 1:  # the prompt, all at once: each position sees itself and what precedes it
        ahead = torch.arange(end, device=q.device)[None, :] > torch.arange(start, end, device=q.device)[:, None]
        scores = scores.masked_fill(ahead, float("-inf"))
    out = torch.softmax(scores, dim=-1).to(values.dtype) @ values  # [B, H, t, D]
    return self.out_proj(out.transpose(1, 2).reshape(b, t, -1).to(query.dtype)), None


@contextlib.contextmanager
def cached_kv_attention(lm: nn.Module, min_capacity: int = MIN_CAPACITY) -> Iterator[int]:
    """Within the block, ``lm``'s switchable layers stream with keys and values kept in place; yields how many.

    Outside streaming (training, a whole-sequence forward) the layers run audiocraft's code as before.
    The layers are restored on exit, also after an error.
    """
    layers = [m for m in lm.modules() if switchable(m)]
    for m in layers:
        setattr(m, "_kv_audiocraft_forward", m.forward)  # noqa: B010 (nn.Module's attribute typing refuses these)
        setattr(m, "_kv_min_capacity", min_capacity)  # noqa: B010
        m.forward = types.MethodType(_cached_forward, m)
    try:
        yield len(layers)
    finally:
        for m in layers:  # only those this block switched (an enclosing block restores its own)
            for name in ("forward", "_kv_audiocraft_forward", "_kv_min_capacity"):
                vars(m).pop(name, None)
