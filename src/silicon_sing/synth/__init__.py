"""Synthetic stems for the embedded default: three fictional artists who sing or rap.

The corpus stands in for a user's ``<root>/<artist>/<track>/{acapella,instrumental,full}.<ext>``
folder, so the smoke profile exercises exactly the code path of real data. The voice is
source-filter synthesis: a band-limited (polyBLEP) glottal sawtooth following a pitch contour
(portamento, vibrato or speech-like intonation, jitter and shimmer) plus pulsed aspiration noise,
shaped by a cascade of five time-varying formant resonators (a/e/i/o/u tables per voice type),
with filtered-noise consonants at syllable onsets and breaths between phrases. The instrumental
is drums, bass and chords rendered note by note in the artist's key and tempo. A track is first
*composed* (:func:`plan_track`: phrases, notes, chords) and then *rendered*
(:func:`synth_track`); both draw from ``numpy.random.default_rng`` seeded by
``(seed, artist, track)``, so output is bit-reproducible and adding tracks leaves others unchanged.
``full`` is the exact sample sum of the two stems after one shared peak gain.

One responsibility per module: :mod:`~silicon_sing.synth.plan` (the artists' styles and the
composition), :mod:`~silicon_sing.synth.voice` (source-filter singing and rapping),
:mod:`~silicon_sing.synth.band` (drums, bass, chords), :mod:`~silicon_sing.synth.dsp` (what both
share), :mod:`~silicon_sing.synth.corpus` (a track's stems and the corpus on disk with its ground
truth). Pitch classes, scales and MIDI/Hz come from :mod:`silicon_sing.music`; the f0 tracker that
checks the voices (:func:`silicon_sing.music.estimate_f0`) lives there too.

Notebook: notebooks/01_curate.ipynb (the smoke profile's input; its ground truth is compared with
the captions in notebooks/02_caption.ipynb)
"""

from __future__ import annotations

from .corpus import (
                     CORPUS_FILE,
                     PEAK,
                     STEMS,
                     SYNTH_VERSION,
                     corpus_spec,
                     corpus_truth,
                     load_corpus_tracks,
                     make_synthetic_corpus,
                     synth_track,
)
from .plan import ARTISTS, ArtistStyle, Syllable, TrackPlan, chord_name, chord_pcs, plan_track, scale_notes
from .voice import FORMANTS, formant_cascade, glottal_source, render_vowel

__all__ = [
    "ARTISTS", "ArtistStyle", "CORPUS_FILE", "Syllable", "TrackPlan", "FORMANTS", "PEAK", "STEMS", "SYNTH_VERSION", "chord_name",
    "chord_pcs", "corpus_spec", "corpus_truth", "formant_cascade", "glottal_source", "load_corpus_tracks",
    "make_synthetic_corpus", "plan_track", "render_vowel", "scale_notes", "synth_track",
]
