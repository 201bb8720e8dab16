#!/usr/bin/env python
"""Choose the smoke profile's sampling temperature on the nano model's own held-out tracks.

Usage::

    python scripts/sampling_sweep.py                      # temperatures 1, 0.7, 0.5, 0.3, seeds 0-2 (7.4 min, 2 cores)
    python scripts/sampling_sweep.py --temperatures 0.5 --seeds 0   # one setting, one seed (~1 min)
    python scripts/sampling_sweep.py --temperatures 1,0.5 --out sweep.json
    python scripts/sampling_sweep.py --temperatures 0.5 --cfg-coefs 1,3,6   # guidance too (every pair is a row)
    python scripts/sampling_sweep.py --temperatures 0.5 --top-ks 250,32     # top-k too (every combination is a row)
    python scripts/sampling_sweep.py --model /tmp/nano    # another pre-trained nano (scripts/pretrain_nano.py --out)

It renders every stem of ``--tracks-per-artist`` tracks per artist under the held-out seed
(``silicon_sing.pretrain.HELDOUT_SEED``: neither pre-training nor any profile's test set), prompts
the model with 2 s at 0 s and at 6 s of each 12 s instrumental and acapella stem, and measures each
continuation against the track's known tempo and key and for voicing
(:func:`silicon_sing.metrics.musicality.sampling_sweep`), the tempo also per true tempo (``tempo_by_bpm``)
and per place of the prompt (``tempo_by_start``: a song's opening bar at 0 s, or 6 s in; the smoke test
prompts are half of each). Every row pools ``--seeds`` sampling seeds and says what each kept (``tempo_by_seed``):
one seed of 24 prompts moves the tempo kept by about ten points, more than most settings differ. ``fades`` is
the share of continuations whose last second sinks 15 dB under the prompt. The smoke profile's
``evaluate.temperature`` is the temperature this picks; the test tracks never take part.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from silicon_sing import pretrain as P
from silicon_sing.fsutil import atomic_write_json
from silicon_sing.metrics.musicality import Truth, sampling_sweep
from silicon_sing.synth import ARTISTS, plan_track

PROMPT_S, CLIP_S = 2.0, 6.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=P.ASSETS_DIR, help="nano model directory (default: the shipped one)")
    ap.add_argument("--temperatures", default="1,0.7,0.5,0.3", help="comma-separated sampling temperatures")
    ap.add_argument("--cfg-coefs", default=None,
                    help="comma-separated classifier-free guidance coefficients (default: MusicGen's)")
    ap.add_argument("--top-ks", default=None,
                    help="comma-separated top-k values (default: MusicGen's 250; the nano codebooks have 256 entries)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated sampling seeds, pooled in every row")
    ap.add_argument("--tracks-per-artist", type=int, default=4, help="held-out tracks per artist")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", type=Path, default=None, help="also write the table as JSON here")
    return ap.parse_args(argv)


def heldout_prompts(tracks_per_artist: int, threads: int
                    ) -> tuple[np.ndarray, list[str], list[str], list[Truth], list[bool]]:
    """Prompts ``[B, PROMPT_S·sr]`` from the held-out stems, with their captions, categories, truths and whether
    each is its song's opening (0 s) or later (6 s in)."""
    config = dataclasses.replace(P.PretrainConfig(), heldout_tracks_per_artist=tracks_per_artist,
                                 heldout_seconds=2 * CLIP_S)
    clips = [c for c in P.heldout_corpus(config, progress=True, workers=threads)
             if c.category in ("instrumental", "acapella")]
    style = {a.name: a for a in ARTISTS}
    sr, n = config.corpus.sample_rate, int(round(PROMPT_S * config.corpus.sample_rate))
    prompts, captions, categories, truths, openings = [], [], [], [], []
    for c in clips:
        plan = plan_track(style[c.artist], c.track_index, config.heldout_seconds, config.heldout_seed)
        for start in (0.0, CLIP_S):
            i = int(round(start * sr))
            prompts.append(c.audio[i:i + n])
            captions.append(c.caption)
            categories.append(c.category)
            truths.append(Truth(plan.tempo_bpm, plan.key))
            openings.append(start == 0.0)
    return np.stack(prompts), captions, categories, truths, openings


def main(argv: list[str] | None = None) -> int:
    """Run the sweep and print its table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    prompts, captions, categories, truths, openings = heldout_prompts(args.tracks_per_artist, args.threads)
    model = P.load_shipped(args.model)
    cfgs = [None] if args.cfg_coefs is None else [float(c) for c in args.cfg_coefs.split(",")]
    top_ks = [None] if args.top_ks is None else [int(k) for k in args.top_ks.split(",")]
    settings = [{"temperature": float(t), **({} if c is None else {"cfg_coef": c}), **({} if k is None else {"top_k": k})}
                for t in args.temperatures.split(",") for c in cfgs for k in top_ks]
    table = sampling_sweep(model, prompts, captions, categories, truths, settings, CLIP_S,
                           sr=P.CorpusSpec().sample_rate, progress=True,
                           seeds=[int(s) for s in args.seeds.split(",")], openings=openings)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.out is not None:
        atomic_write_json(args.out, {"model": str(args.model), "tracks_per_artist": args.tracks_per_artist,
                                     "prompt_s": PROMPT_S, "clip_s": CLIP_S, "seeds": args.seeds, "rows": table.to_dict("records")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
