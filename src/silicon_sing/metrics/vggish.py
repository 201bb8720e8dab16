"""The paper's FAD embedding: VGGish (torchvggish) as fadtk uses it.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import os

import numpy as np

from .base import EmbeddingBackend, package_version
from .spectral import pad_to, prepare_audio
from .weights import VGGISH_WEIGHTS, read_state_dict, resolve_weights, torch_device, weights_id

VGGISH_MIN_SECONDS = 1.0  # fadtk's VGGishModel(min_len=1): shorter audio is zero-padded to 1 s


class VggishBackend(EmbeddingBackend):
    """VGGish (torchvggish) as fadtk uses it for FAD: raw 128-d embeddings, PCA off, no final ReLU.

    16 kHz mono; audio shorter than 1 s is zero-padded to 1 s (fadtk's ``min_len``); one embedding
    per non-overlapping 0.96 s log-mel patch (``torchvggish.vggish_input.waveform_to_examples``).

    ``pretrained=True`` loads ``vggish-10086976.pth`` from ``weights``, ``$SILICON_SING_VGGISH_WEIGHTS``
    or the torch hub cache (where ``torch.hub.load('harritaylor/torchvggish', 'vggish')`` keeps it),
    and never downloads unless ``allow_download``. ``pretrained=False``: same architecture, seeded
    random weights (tests, benchmarks).
    """

    name = "vggish"

    def __init__(self, pretrained: bool = True, weights: str | os.PathLike[str] | None = None,
                 allow_download: bool = False, device: str | None = None, seed: int = 0) -> None:
        # lazy: torch and torchvggish load only for the paper-profile backend
        import torch
        from torch import nn

        self.sample_rate, self.dim, self.seed = 16000, 128, seed
        self.weights_path = resolve_weights(VGGISH_WEIGHTS, weights, allow_download) if pretrained else None
        self.device = torch_device(device)
        from torchvggish.torchvggish import VGG, make_layers

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # postprocess=False: no PCA/whitening/quantisation (and no PCA-parameter download)
            model = VGG(make_layers(), postprocess=False)
        if self.weights_path is not None:
            try:
                model.load_state_dict(read_state_dict(self.weights_path))
            except RuntimeError as e:
                raise RuntimeError(f"{self.weights_path} does not fit VGGish: {e}") from e
        # drop the final ReLU so embeddings keep their sign (fadtk's use_activation=False)
        model.embeddings = nn.Sequential(*list(model.embeddings.children())[:-1])
        self.model = model.eval().to(self.device)

    @property
    def fingerprint(self) -> str:
        """Model, weights and front end."""
        return (f"{self.name}:v1:{weights_id(self.weights_path, self.seed)}:torchvggish={package_version('torchvggish')}:"
                f"pca=off:relu=off:min={VGGISH_MIN_SECONDS}:resample=soxr-hq")

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Raw VGGish embeddings ``[frames, 128]``, one per 0.96 s."""
        # lazy: see __init__
        import torch
        from torchvggish.vggish_input import waveform_to_examples

        x = pad_to(prepare_audio(audio, sr, self.sample_rate), int(VGGISH_MIN_SECONDS * self.sample_rate))
        examples = waveform_to_examples(x.astype(np.float64), self.sample_rate, return_tensor=True)
        with torch.inference_mode():
            return self.model(examples.detach().to(self.device)).float().cpu().numpy()
