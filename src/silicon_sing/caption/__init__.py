"""Stage 02 — captioning: Essentia descriptors per track, natural-language captions, a run UUID.

Inputs are stage 01's files (``<run_dir>/curated/``, see CONTRIBUTING.md); outputs go to
``<run_dir>/captions/`` and into the ``description`` (plus ``bpm``, ``key``, ``genre``, ``moods``,
``keywords``) of every segment sidecar, which is what audiocraft's ``MusicDataset`` reads.

Descriptors (computed once per *track* from its whole normalised stems; all segments of a track
share them):

- **tempo** — Essentia ``RhythmExtractor2013`` (multifeature) on the full mix and on the
  instrumental at 44.1 kHz (the rate it is tuned for); the more confident one wins. Its confidence
  (0–5.3) is kept; below ``caption.min_bpm_confidence``, or when the onset envelope does not
  repeat at the beat period (the tracker is over-confident on short clips: 8 s of white noise
  scores ~2.5), the BPM is withheld (``bpm=None`` with the reason in ``notes``). Tempo octave
  errors (70 read as 140) cannot be ruled out from the signal — a 70 BPM groove with eighth-note
  hats *is* a 140 BPM half-time groove: when the other octave lies in the usual pop range and the
  onset envelope is also periodic there, ``bpm_octave_ambiguous`` is set and the other octave is
  kept as ``bpm_alternative`` (this flags most 120–180 BPM tracks with a half-time pulse).
- **key and scale** — Essentia ``KeyExtractor`` with the ``edma`` profile (``caption.key_profile``).
  Why: the paper's stems are pop/hip-hop/R&B, loop-based and minor-heavy like the electronic dance
  music the ``edma`` profiles were learnt from (Faraldo et al. 2016), which beat Krumhansl- and
  Shaath-style profiles there; ``edmm`` reports every major key as minor and the default
  ``bgate`` missed a minor key on our synthetic progressions once drums were mixed in, ``edma``
  did not (tests/test_caption.py); on the smoke corpus ``edma`` was also the most accurate of
  edma/bgate/krumhansl/shaath/temperley2005/edmm. Keys from noise-like spectra (median spectral
  flatness above 0.3) or with strength below ``caption.min_key_strength`` are withheld.
- **danceability** (Essentia ``Danceability``, DFA), **loudness** (BS.1770 LUFS), **energy** (a
  0–1 arousal score from tempo, onset density and brightness — loudness itself is uninformative
  after stage 01 normalised every track), **brightness** (median spectral centroid), **vocal
  presence** (the acapella's share of stem energy) and **vocal register** (median YIN pitch of the
  acapella), **instrument hints** from the instrumental (onset rate → drums, sub-150 Hz energy →
  bass, a high centroid → bright synths).
- **mood and genre** — with ``caption.essentia_model_dir`` set (paper profile), Essentia's
  published TensorFlow models: Discogs-EffNet embeddings, the ``genre_discogs400`` head (400 Discogs
  styles; the top style's parent genre becomes ``genre``) and the ``mtg_jamendo_moodtheme`` head
  (56 moods/themes; the top ones become ``moods``). This needs the ``essentia-tensorflow`` wheel
  *instead of* ``essentia``. Without a model dir, a model-free fallback: moods from a
  valence/arousal quadrant (valence from mode and brightness, arousal from the energy score)
  worded in the Jamendo mood vocabulary, genre from the user's metadata
  (``<track>/meta.json`` or ``<artist>/artist.json`` with a ``"genre"`` key) or omitted.
  ``TrackDescriptors.sources`` records where every field came from.

Captions are deterministic: templates and synonyms are drawn with an RNG seeded by
``(seed, track_id, category)``, so captions vary across tracks but a rerun reproduces them. The
acapella caption describes the voice, the instrumental one the accompaniment, the full one both.

**The UUID and audiocraft's text augmentation.** Each caption is prefixed by a UUID fixed for the
run (``<run_dir>/captions/run_uuid.json``; ``caption.caption_uuid`` pins one; otherwise it is
derived from the seed and profile so a rebuilt run gets the same one) — the trigger that separates
fine-tuned behaviour from pre-training, reused verbatim at evaluation. audiocraft 1.3.0 would not
deliver it reliably: ``T5Conditioner.tokenize`` drops every space-separated word with
``word_dropout`` (0.2 in the MusicGen grids), so the UUID — one "word" — vanishes from 20 % of
training examples, and ``augment_music_info_description`` (``merge_text_p=0.25``,
``drop_desc_p=0.5``) replaces the whole description by ``key: …, bpm: …`` metadata in another
12.5 %. Our choice: the trainer turns both off in audiocraft (``word_dropout=0``,
``merge_text_p=0``) and applies :func:`augment_description` instead, which reproduces the same
augmentation (metadata merge, description drop, word dropout at the same rates) on everything
*except* the UUID, which always stays the first token. Classifier-free-guidance dropout still
nulls the whole text condition (UUID included) for ``cfg_dropout`` of the batches, as it must for
guidance to work. A UUID is a single token for the word dropout but several T5 sentencepiece
pieces; it is kept lowercase and hyphenated so its tokenisation is the same in training and
evaluation.

Speed: tracks are analysed in parallel (``params.n_workers`` processes, a tqdm bar), and each
stem's descriptors are cached in ``captions/descriptors/<sha1 of the audio file>.json`` together
with the analysis settings, so an unchanged rerun analyses nothing. Worked through in
``notebooks/02_caption.ipynb``.

The stage is a package, one responsibility per module:

- :mod:`~silicon_sing.caption.essentia_models` — the TensorFlow models' files and checks (:class:`MissingModelsError`), :class:`EssentiaModels`;
- :mod:`~silicon_sing.caption.descriptors` — raw measurements of a stem (:func:`analyse_signal`,
  cached by :func:`describe_stem`); the voice's pitch tracker and key names are in
  :mod:`silicon_sing.music`, shared with the synthetic corpus and evaluation;
- :mod:`~silicon_sing.caption.decisions` — what a track's caption may state (:func:`describe_track`);
- :mod:`~silicon_sing.caption.templates` — the caption wording (:func:`make_caption`);
- :mod:`~silicon_sing.caption.stage` — :func:`run_captioning`, sidecars, tables, loaders;
- :mod:`~silicon_sing.caption.report` — what ``notebooks/02_caption.ipynb`` shows and glues.

The run UUID and :func:`~silicon_sing.data.augment_description` live in :mod:`silicon_sing.data`
(stages 03–04 use them without importing this stage).

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

from .decisions import (
                        QUADRANT_MOODS,
                        brightness01,
                        decide_key,
                        decide_tempo,
                        describe_track,
                        energy_score,
                        fallback_moods,
                        read_user_metadata,
)
from .descriptors import (
                        DESCRIPTOR_VERSION,
                        TONAL_ROLES,
                        AnalysisConfig,
                        StemDescriptors,
                        TrackDescriptors,
                        analyse_signal,
                        describe_stem,
                        estimate_key,
                        estimate_tempo,
                        load_cached,
                        spectral_summary,
)
from .essentia_models import (
                        ESSENTIA_MODELS,
                        ESSENTIA_MODELS_URL,
                        CaptionError,
                        EssentiaModels,
                        MissingModelsError,
                        ModelSpec,
                        check_essentia_models,
                        expected_model_files,
)
from .report import (
                        captions_by_artist,
                        captions_player_html,
                        example_captions,
                        simulate_uuid_retention,
                        summary,
                        synthetic_truth,
                        tables,
                        tempo_agreement,
)
from .stage import (
                        CSV_COLUMNS,
                        CaptionResult,
                        analysis_config,
                        load_captions,
                        load_descriptors,
                        run_captioning,
                        sidecar_fields,
                        write_sidecars,
                        write_tables,
)
from .templates import CAPTION_VERSION, MOOD_ADJECTIVE, CaptionRecord, caption_rng, make_caption

__all__ = [
    "StemDescriptors", "TrackDescriptors", "CaptionRecord", "CaptionResult", "AnalysisConfig", "CaptionError",
    "MissingModelsError", "EssentiaModels", "ModelSpec", "check_essentia_models", "expected_model_files",
    "ESSENTIA_MODELS", "ESSENTIA_MODELS_URL", "DESCRIPTOR_VERSION", "CAPTION_VERSION", "TONAL_ROLES",
    "QUADRANT_MOODS", "MOOD_ADJECTIVE", "CSV_COLUMNS", "analyse_signal", "spectral_summary", "estimate_tempo",
    "estimate_key", "describe_stem", "load_cached", "describe_track", "decide_tempo", "decide_key", "brightness01",
    "energy_score", "fallback_moods", "read_user_metadata", "caption_rng", "make_caption", "analysis_config",
    "run_captioning", "sidecar_fields", "write_sidecars", "write_tables", "load_captions", "load_descriptors",
    "tables", "example_captions", "captions_player_html", "tempo_agreement", "synthetic_truth",
    "simulate_uuid_retention", "captions_by_artist", "summary",
]
