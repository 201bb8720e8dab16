"""D-Adaptation Adam that also works when FSDP shards the parameters on any device (stage 03).

The paper's recipe trains with audiocraft's ``DAdaptAdam`` (``optimizer=dadam``, lr 1). Its step
size ``d`` is estimated from sums over *all* parameters; when FSDP shards them, every rank sees
only its shard, so audiocraft all-reduces the three sums — on a tensor it creates with
``device='cuda'``, which fails on CPU ranks (the rehearsal's gloo FSDP) and is not needed where the
sums already cover every parameter. :class:`DAdaptAdam` is audiocraft's optimizer with that one
reduction made explicit: ``sharded=True`` all-reduces the sums on the parameters' own device, and
``sharded=False`` is audiocraft's step exactly (a test checks they agree bit for bit).

Used by :class:`silicon_sing.train.Trainer`; explained in ``notebooks/03_finetune.ipynb``.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.distributed as dist
from audiocraft.optim import DAdaptAdam as AudiocraftDAdaptAdam
from audiocraft.optim.dadam import to_real


class DAdaptAdam(AudiocraftDAdaptAdam):
    """audiocraft's D-Adaptation Adam; ``sharded=True`` when each rank holds a disjoint parameter shard."""

    def __init__(self, params: Iterable[Any], sharded: bool = False, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.sharded = sharded
        for group in self.param_groups:
            group["fsdp_in_use"] = sharded

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # noqa: C901 (audiocraft's algorithm)
        """One step: audiocraft's ``DAdaptAdam.step`` with the shard sums reduced on the parameters' device."""
        loss = closure() if closure is not None else None
        g_sq, sksq_weighted, sk_l1 = 0.0, 0.0, 0.0
        lr = max(group["lr"] for group in self.param_groups)
        group = self.param_groups[0]
        gsq_weighted, d = group["gsq_weighted"], group["d"]
        dlr = d * lr
        growth_rate, decouple = group["growth_rate"], group["decouple"]
        beta1, beta2 = group["betas"]
        device = None
        for group in self.param_groups:
            group_lr, decay, eps = group["lr"], group["weight_decay"], group["eps"]
            if group_lr not in [lr, 0.0]:
                raise RuntimeError("Setting different lr values in different parameter "
                                   "groups is only supported for values of 0")
            for p in group["params"]:
                if p.grad is None:
                    continue
                device = p.device
                grad = p.grad.data
                if decay != 0 and not decouple:
                    grad.add_(p.data, alpha=decay)
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["s"] = torch.zeros_like(p.data, memory_format=torch.preserve_format).detach()
                    state["exp_avg"] = torch.zeros_like(p.data, memory_format=torch.preserve_format).detach()
                    state["exp_avg_sq"] = torch.zeros_like(to_real(p.data),
                                                           memory_format=torch.preserve_format).detach()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                grad_grad = to_real(grad * grad.conj())
                if group_lr > 0:
                    exp_avg.mul_(beta1).add_(grad, alpha=dlr * (1 - beta1))
                    exp_avg_sq.mul_(beta2).add_(grad_grad, alpha=1 - beta2)
                    denom = exp_avg_sq.sqrt().add_(eps)
                    g_sq += grad_grad.div_(denom).sum().item()
                    s = state["s"]
                    s.mul_(beta2).add_(grad, alpha=dlr * (1 - beta2))
                    sksq_weighted += to_real(s * s.conj()).div_(denom).sum().item()
                    sk_l1 += s.abs().sum().item()
        gsq_weighted = beta2 * gsq_weighted + g_sq * (dlr ** 2) * (1 - beta2)
        sums: tuple[float, ...] = (sksq_weighted, gsq_weighted, sk_l1)
        if self.sharded and dist.is_initialized():
            # every rank must join the reduction, even one whose shard got no gradient this step
            t = torch.tensor(sums, dtype=torch.float64, device=device or torch.device("cpu"))
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            sums = tuple(float(x) for x in t.cpu())
        global_sksq_weighted, global_gsq_weighted, global_sk_l1 = sums
        if global_sk_l1 == 0:  # no gradient anywhere yet: no progress to measure
            return loss
        if lr > 0.0:
            d_hat = (global_sksq_weighted / (1 - beta2) - global_gsq_weighted) / global_sk_l1
            d = max(d, min(d_hat, d * growth_rate))
        for group in self.param_groups:
            group["gsq_weighted"] = gsq_weighted
            group["d"] = d
            group_lr, decay, eps = group["lr"], group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                denom = exp_avg_sq.sqrt().add_(eps).type(p.type())
                if decay != 0 and decouple and group_lr > 0:
                    p.data.add_(p.data, alpha=-decay * dlr)
                p.data.addcdiv_(exp_avg, denom, value=-1)
            group["k"] = group["k"] + 1
        return loss


__all__ = ["DAdaptAdam"]
