#!/usr/bin/env python
"""Write the rehearsal caches: random-init musicgen-melody, t5-base, htdemucs, PaSST and VGGish, offline.

Usage::

    python scripts/make_rehearsal_caches.py --root /tmp/rehearsal            # ~1.4 GB, ~15-30 s
    eval "$(python scripts/make_rehearsal_caches.py --root /tmp/rehearsal --print-env)"
    python scripts/make_rehearsal_caches.py --root /tmp/rehearsal --lm-layers 2 --t5-layers 1

The files are laid out as the Hugging Face hub cache (``HF_HOME``) and the torch hub cache
(``TORCH_HOME``) hold the real weights, so ``MusicGen.get_pretrained("facebook/musicgen-melody")``
and the PaSST / VGGish metric backends load them unchanged once the printed variables are set
(see :mod:`silicon_sing.rehearsal`). A rerun with the same arguments does nothing. Progress goes
to stderr; with ``--print-env`` stdout holds only ``export K=V`` lines, for ``eval`` in a shell or
a Makefile recipe. The paper profile never runs this script.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from silicon_sing import rehearsal as R


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="directory that receives huggingface/ and torch/")
    ap.add_argument("--lm-layers", type=int, default=4, help="transformer layers of the LM (the release has 48)")
    ap.add_argument("--t5-layers", type=int, default=2, help="encoder (and decoder) layers of T5 (t5-base has 12)")
    ap.add_argument("--seed", type=int, default=0, help="seed of every random initialisation")
    ap.add_argument("--full-demucs", action="store_true",
                    help="htdemucs at its released width (default: narrower, ~3x faster chroma on CPU)")
    ap.add_argument("--print-env", action="store_true", help="print `export K=V` lines selecting the caches")
    ap.add_argument("--no-progress", action="store_true", help="no per-artifact progress lines")
    args = ap.parse_args(argv)
    if args.lm_layers < 1 or args.t5_layers < 1:
        ap.error("--lm-layers and --t5-layers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build (or confirm) the caches; print the environment when asked."""
    args = parse_args(argv)
    # the library logs its progress lines; show them on stderr as before (stdout stays free for --print-env)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    env = R.build_rehearsal_caches(args.root, lm_layers=args.lm_layers, t5_layers=args.t5_layers, seed=args.seed,
                                   progress=not args.no_progress, full_demucs=args.full_demucs)
    if args.print_env:
        sys.stdout.write(R.export_lines(env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
