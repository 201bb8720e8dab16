"""Making Silicon Sing, reproduced: the helper package behind the book.

Every computation lives here; the notebooks in ``notebooks/`` only set parameters, call these
functions, plot, play audio and ``glue`` numbers. One module per pipeline stage:

- :mod:`silicon_sing.synth`   — the embedded default's synthetic stems (3 artists)
- :mod:`silicon_sing.curate`  — validation, resampling, loudness, segments, split, manifests
- :mod:`silicon_sing.caption` — Essentia descriptors, captions, UUID prefix
- :mod:`silicon_sing.train`   — torchrun fine-tuning entry point
- :mod:`silicon_sing.generate`, :mod:`silicon_sing.metrics` — continuations, KL and FAD
"""

__version__ = "0.1.0"
