"""The TensorFlow models of the paper profile (mood and genre): their files, checks and graphs.

With ``caption.essentia_model_dir`` set (paper profile), Essentia's published TensorFlow models:
Discogs-EffNet embeddings, the ``genre_discogs400`` head (400 Discogs styles) and the
``mtg_jamendo_moodtheme`` head (56 moods/themes). This needs the ``essentia-tensorflow`` wheel
*instead of* ``essentia``; :func:`check_essentia_models` names every missing file with its URL
before any work is done.

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audio as au
from ..fsutil import read_json, text_sha1
from ..music import as_essentia, essentia_standard

MODEL_SR = 16000  # Discogs-EffNet input rate
MODEL_TOP_K = 5

ESSENTIA_MODELS_URL = "https://essentia.upf.edu/models"
# role -> path under ESSENTIA_MODELS_URL (without extension); each needs its .pb and .json
ESSENTIA_MODELS = {
    "embeddings": "feature-extractors/discogs-effnet/discogs-effnet-bs64-1",
    "genre": "classification-heads/genre_discogs400/genre_discogs400-discogs-effnet-1",
    "mood": "classification-heads/mtg_jamendo_moodtheme/mtg_jamendo_moodtheme-discogs-effnet-1",
}
# graph node names used when a model's .json metadata has no schema (the published values)
DEFAULT_NODES = {
    "embeddings": ("serving_default_melspectrogram", "PartitionedCall:1"),
    "genre": ("serving_default_model_Placeholder", "PartitionedCall:0"),
    "mood": ("model/Placeholder", "model/Sigmoid"),
}



class CaptionError(RuntimeError):
    """Captioning cannot run as configured; the message says what to change."""


class MissingModelsError(CaptionError, FileNotFoundError):
    """``caption.essentia_model_dir`` is set but model files are missing (named, with URLs)."""



def _models_signature(model_dir: str) -> str:
    """Names and sizes of the model files, so replacing a model invalidates the cache."""
    parts = []
    for rel in ESSENTIA_MODELS.values():
        name = rel.rsplit("/", 1)[-1]
        for ext in (".pb", ".json"):
            p = Path(model_dir) / f"{name}{ext}"
            parts.append(f"{p.name}:{p.stat().st_size if p.exists() else -1}")
    return text_sha1("|".join(parts))


# --------------------------------------------------------------------------- TensorFlow models


@dataclass(frozen=True)
class ModelSpec:
    """One Essentia TensorFlow graph: file, node names and output classes."""

    role: str
    graph: str
    input: str
    output: str
    classes: tuple[str, ...]


def expected_model_files() -> list[tuple[str, str]]:
    """(file name, download URL) of every file ``caption.essentia_model_dir`` must hold."""
    out = []
    for rel in ESSENTIA_MODELS.values():
        name = rel.rsplit("/", 1)[-1]
        for ext in (".pb", ".json"):
            out.append((f"{name}{ext}", f"{ESSENTIA_MODELS_URL}/{rel}{ext}"))
    return out


def _essentia_version() -> str:
    """The installed essentia(-tensorflow) distribution version, for the install hint."""
    from importlib import metadata

    for dist in ("essentia-tensorflow", "essentia"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "2.1b6.dev1389"


def check_essentia_models(model_dir: str | Path) -> dict[str, ModelSpec]:
    """Verify the model files and the TensorFlow-enabled Essentia; return the graphs' specs."""
    model_dir = Path(model_dir)
    missing = [(n, u) for n, u in expected_model_files() if not (model_dir / n).is_file()]
    if missing:
        lines = "\n".join(f"  {n:<48} {u}" for n, u in missing)
        raise MissingModelsError(
            f"caption.essentia_model_dir = {model_dir} is set, but these Essentia model files are missing:\n"
            f"{lines}\n"
            f"Download each into {model_dir} (e.g. `curl -LO <url>`; all are listed under "
            f"{ESSENTIA_MODELS_URL}/), and install the TensorFlow build of Essentia instead of the plain one: "
            f"`pip uninstall -y essentia && pip install essentia-tensorflow=={_essentia_version()}` (never both). "
            "Or set caption.essentia_model_dir: null to use the model-free mood/genre fallback."
        )
    es = essentia_standard()
    if not (hasattr(es, "TensorflowPredictEffnetDiscogs") and hasattr(es, "TensorflowPredict2D")):
        raise CaptionError(
            "caption.essentia_model_dir is set, but the installed Essentia has no TensorFlow algorithms "
            "(TensorflowPredictEffnetDiscogs, TensorflowPredict2D): the plain `essentia` wheel is installed. "
            f"Replace it with the same version of the TensorFlow build: `pip uninstall -y essentia && "
            f"pip install essentia-tensorflow=={_essentia_version()}` — install one or the other, never both "
            "(they provide the same `essentia` module). Or set caption.essentia_model_dir: null."
        )
    specs = {}
    for role, rel in ESSENTIA_MODELS.items():
        name = rel.rsplit("/", 1)[-1]
        meta = read_json(model_dir / f"{name}.json")
        d_in, d_out = DEFAULT_NODES[role]
        schema = meta.get("schema") or {}
        inputs = schema.get("inputs") or []
        outputs = schema.get("outputs") or []
        purpose = "embeddings" if role == "embeddings" else "predictions"
        out_node = next((o["name"] for o in outputs if o.get("output_purpose") == purpose), d_out)
        in_node = inputs[0]["name"] if inputs and inputs[0].get("name") else d_in
        specs[role] = ModelSpec(role, str(model_dir / f"{name}.pb"), in_node, out_node,
                                tuple(meta.get("classes") or ()))
    if len(specs["genre"].classes) == 0 or len(specs["mood"].classes) == 0:
        raise CaptionError(f"{model_dir}: the genre/mood .json metadata lists no 'classes'; re-download them")
    return specs


class EssentiaModels:
    """Discogs-EffNet embeddings + genre_discogs400 + mtg_jamendo_moodtheme heads (essentia-tensorflow)."""

    def __init__(self, model_dir: str | Path):
        """Build the three graphs (raises :class:`MissingModelsError`/:class:`CaptionError` first)."""
        self.specs = check_essentia_models(model_dir)
        es = essentia_standard()
        emb, genre, mood = self.specs["embeddings"], self.specs["genre"], self.specs["mood"]
        self.embedder = es.TensorflowPredictEffnetDiscogs(graphFilename=emb.graph, input=emb.input, output=emb.output)
        self.genre_head = es.TensorflowPredict2D(graphFilename=genre.graph, input=genre.input, output=genre.output)
        self.mood_head = es.TensorflowPredict2D(graphFilename=mood.graph, input=mood.input, output=mood.output)

    def predict(self, x: np.ndarray, sr: int) -> tuple[dict[str, float], dict[str, float]]:
        """Mean genre-style and mood activations over the clip (top k of each).

        Args:
            x: audio, float ``[N]`` or ``[C, N]`` at ``sr`` (resampled to 16 kHz mono here).
        Returns:
            (Discogs style -> activation, Jamendo mood/theme -> activation), best first.
        """
        x16 = as_essentia(au.resample(au.to_mono(x), sr, MODEL_SR))
        emb = np.asarray(self.embedder(x16), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            return {}, {}
        genres = np.asarray(self.genre_head(emb), dtype=np.float64).mean(axis=0)
        moods = np.asarray(self.mood_head(emb), dtype=np.float64).mean(axis=0)
        return _top(genres, self.specs["genre"].classes), _top(moods, self.specs["mood"].classes)


def _top(scores: np.ndarray, classes: Sequence[str], k: int = MODEL_TOP_K) -> dict[str, float]:
    """The ``k`` highest-scoring classes, best first."""
    order = np.argsort(-scores)[:k]
    return {str(classes[i]): round(float(scores[i]), 4) for i in order if i < len(classes)}


_MODELS: dict[str, EssentiaModels] = {}


def _models_for(model_dir: str | None) -> EssentiaModels | None:
    """One :class:`EssentiaModels` per process and model dir."""
    if not model_dir:
        return None
    if model_dir not in _MODELS:
        _MODELS[model_dir] = EssentiaModels(model_dir)
    return _MODELS[model_dir]
