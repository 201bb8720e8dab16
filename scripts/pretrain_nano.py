#!/usr/bin/env python
"""Pre-train the smoke profile's nano MusicGen and write it to ``src/silicon_sing/assets/nano/``.

Usage::

    python scripts/pretrain_nano.py                 # the shipped checkpoints (~2 h 50 min on 2 CPU cores)
    python scripts/pretrain_nano.py --out /tmp/nano # somewhere else (then: train.model: /tmp/nano)
    python scripts/pretrain_nano.py --tiny --out /tmp/nano-tiny   # seconds: checks the code path only
    python scripts/pretrain_nano.py --codec-steps 9600 --lm-steps 4800  # longer (~4 h)
    python scripts/pretrain_nano.py --keep-first-stage /tmp/first    # keep the stage before the LM's warm restart
    python scripts/pretrain_nano.py --lm-from /tmp/first             # ... and later rerun only the restart
    python scripts/pretrain_nano.py --keep-lm-stages /tmp/lm         # keep what the decoder stage starts from
    python scripts/pretrain_nano.py --decoder-from /tmp/lm           # ... and later rerun only the decoder stage

The recipe has three stages: codec and LM trained from scratch, stored in fp16; the LM's warm restart
(a fresh optimizer and schedule, other training windows) from the stored weights, when
``--lm-restart-steps`` (default: ``LMSpec.restart_steps``) is not 0; and a wider decoder trained on the
stored codec's frozen codes, when ``--decoder-steps`` (default: ``DecoderSpec.steps``) is not 0, which
changes what the codes sound like and leaves every code, and the LM, as they were. ``--lm-from`` takes a
stored first stage, ``--decoder-from`` the stored LM stages (each ``provenance.json`` must record this
recipe up to that stage, and its files their hashes), so a later stage gives the same bytes whether the
stage before ran just now or long ago.

What it does, how long it takes and what it measured is recorded in ``<out>/provenance.json``
(see :mod:`silicon_sing.pretrain`). The synthetic pre-training corpus uses ``--seed`` (default
``silicon_sing.pretrain.PRETRAIN_SEED``), never a profile's seed, so no evaluation track is seen.
Output files are written atomically; ``make book`` never runs this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from silicon_sing import pretrain as P


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=P.ASSETS_DIR, help="output directory (default: the package assets)")
    ap.add_argument("--seed", type=int, default=P.PRETRAIN_SEED,
                    help="synthesis seed of the pre-training corpus (must differ from the profiles' seeds)")
    ap.add_argument("--heldout-seed", type=int, default=P.HELDOUT_SEED, help="synthesis seed of the held-out audio")
    ap.add_argument("--init-seed", type=int, default=0, help="torch seed of initialisation and batch sampling")
    ap.add_argument("--tracks-per-artist", type=int, default=None, help="pre-training tracks per artist")
    ap.add_argument("--codec-steps", type=int, default=None, help="compression-model optimizer steps")
    ap.add_argument("--lm-steps", type=int, default=None, help="language-model optimizer steps (first stage)")
    ap.add_argument("--lm-restart-steps", type=int, default=None,
                    help="steps of the LM's warm restart after the first stage (0: none, the first stage alone)")
    ap.add_argument("--lm-from", type=Path, default=None,
                    help="a first stage written by this script with --lm-restart-steps 0 --decoder-steps 0 (or kept by "
                         "--keep-first-stage) and otherwise the same options: skip it and run the rest from its weights")
    ap.add_argument("--keep-first-stage", type=Path, default=None,
                    help="also keep the first stage (weights + provenance.json) here, for a later --lm-from")
    ap.add_argument("--decoder-steps", type=int, default=None,
                    help="steps of the last stage, a wider decoder on the frozen codes (0: none, the codec's own decoder)")
    ap.add_argument("--decoder-filters", type=int, default=None, help="the wider decoder's SEANet n_filters")
    ap.add_argument("--decoder-from", type=Path, default=None,
                    help="the LM stages written by this script with --decoder-steps 0 and otherwise the same options: "
                         "skip them and run only the decoder stage on their codec and LM")
    ap.add_argument("--keep-lm-stages", type=Path, default=None,
                    help="also keep what the decoder stage starts from (weights + provenance.json), for a later "
                         "--decoder-from")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    ap.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16, half the size)")
    ap.add_argument("--tiny", action="store_true", help="a few steps on a tiny corpus: checks the code path only")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> P.PretrainConfig:
    """The :class:`PretrainConfig` the arguments ask for."""
    from silicon_sing.params import load_params

    cfg = P.tiny_config() if args.tiny else P.PretrainConfig()
    profile_seeds = {load_params(p).seed for p in Path(__file__).resolve().parents[1].glob("params/*.yaml")}
    if args.seed in profile_seeds:
        raise SystemExit(f"--seed {args.seed} is a profile's seed {sorted(profile_seeds)}: pre-training would hear "
                         "evaluation tracks; pick another")
    corpus = dataclasses.replace(cfg.corpus, seed=args.seed)
    if args.tracks_per_artist is not None:
        n = args.tracks_per_artist
        corpus = dataclasses.replace(corpus, tracks_per_artist=n,
                                     codec_tracks_per_artist=min(corpus.codec_tracks_per_artist, n),
                                     category_tracks={k: min(v, n) for k, v in corpus.category_tracks.items()})
    codec = cfg.codec if args.codec_steps is None else dataclasses.replace(cfg.codec, steps=args.codec_steps)
    lm = cfg.lm if args.lm_steps is None else dataclasses.replace(cfg.lm, steps=args.lm_steps)
    if args.lm_restart_steps is not None:
        lm = dataclasses.replace(lm, restart_steps=args.lm_restart_steps)
    decoder = cfg.decoder
    if args.decoder_filters is not None:
        decoder = dataclasses.replace(decoder, n_filters=args.decoder_filters)
    if args.decoder_steps is not None:
        decoder = dataclasses.replace(decoder, steps=args.decoder_steps)
    if not decoder.steps:
        decoder = P.DecoderSpec.none()  # no stage: nothing of it is recorded
    return dataclasses.replace(cfg, corpus=corpus, codec=codec, lm=lm, decoder=decoder, heldout_seed=args.heldout_seed,
                               seed=args.init_seed, threads=args.threads or cfg.threads)


def _rounded(losses: dict[str, object]) -> dict[str, object]:
    """Losses to 3 decimals (nested one level: model → category)."""
    return {k: ({c: round(x, 3) for c, x in v.items()} if isinstance(v, dict)  # type: ignore[union-attr]
                else round(float(v), 3)) for k, v in losses.items()}  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Run the pre-training and print the headline numbers."""
    args = parse_args(argv)
    config = config_from_args(args)
    try:
        prov = P.run_pretraining(config, args.out, progress=not args.no_progress, half=not args.fp32, announce=True,
                                 lm_from=args.lm_from, keep_first_stage=args.keep_first_stage,
                                 decoder_from=args.decoder_from, keep_lm_stages=args.keep_lm_stages,
                                 command=" ".join(["python scripts/pretrain_nano.py",
                                                   *(sys.argv[1:] if argv is None else argv)]))
    except (ValueError, FileNotFoundError) as e:  # a --lm-from / --decoder-from that is not this recipe's stage
        raise SystemExit(f"pretrain_nano.py: {e}") from e
    m = prov["metrics_heldout"]
    summary = {
        "out": str(args.out),
        "codec_si_snr_db": {k: round(v["si_snr_db"], 2) for k, v in m["codec"].items()},
        "codec_mel_distance_db": {k: round(v["mel_distance_db"], 2) for k, v in m["codec"].items()},
        "codec_mel_distance_40db": {k: round(v["mel_distance_40db"], 2) for k, v in m["codec"].items()},
        # the harmonic lines: how much quieter the codec returns 400 Hz - 4 kHz, per category
        "codec_band_lost_mid_db": {k: {c: round(f["band_lost_mid_db"], 2) for c, f in v["per_category"].items()}
                                   for k, v in m["codec"].items()},
        # ...and whether they come back at all: harmonic lines per frame, reconstruction over original
        "codec_harmonic_lines_kept": {k: {c: round(f["harmonic_lines_kept"], 2) for c, f in v["per_category"].items()}
                                      for k, v in m["codec"].items()},
        # ...and how many of the originals' own lines come back in their place
        "codec_harmonic_lines_in_place": {k: {c: round(f["harmonic_lines_in_place"], 2)
                                              for c, f in v["per_category"].items()} for k, v in m["codec"].items()},
        "lm_heldout_loss": _rounded(m["lm_loss"]),
        "lm_heldout_loss_sounding_frames": _rounded(m["lm_loss_sounding"]),
        # nats lost on held-out instrumentals when only the last k seconds of context are the clip's own
        "lm_context_use": {f"{k:g} s": round(x, 3) for k, x in zip(m["lm_context_use"]["instrumental"]["kept_seconds"],
                                                                   m["lm_context_use"]["instrumental"]["ce_increase"])},
        "timings_s": prov["timings_s"],
        "bytes": {k: v["bytes"] for k, v in prov["files"].items()},
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
