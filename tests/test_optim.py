"""Our D-Adaptation Adam: audiocraft's step exactly when unsharded; one reduction when FSDP shards."""

from __future__ import annotations

import copy

import torch
from audiocraft.optim import DAdaptAdam as AudiocraftDAdaptAdam

from silicon_sing.optim import DAdaptAdam


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, n: int, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        model(torch.randn(4, 8, generator=gen)).pow(2).mean().backward()
        opt.step()


def test_unsharded_step_is_audiocrafts_bit_for_bit() -> None:
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.Linear(8, 1))
    b = copy.deepcopy(a)
    kw = dict(lr=1.0, betas=(0.9, 0.95), weight_decay=0.1)
    ref, ours = AudiocraftDAdaptAdam(a.parameters(), **kw), DAdaptAdam(b.parameters(), **kw)
    _steps(a, ref, 25)
    _steps(b, ours, 25)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert ours.param_groups[0]["d"] == ref.param_groups[0]["d"] > 1e-6  # the step size grew, identically
    assert ours.state_dict()["param_groups"][0]["k"] == 25


def test_no_gradient_yet_is_no_progress() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = DAdaptAdam([p], lr=1.0)
    p.grad = torch.zeros(3)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3)) and opt.param_groups[0]["k"] == 0
