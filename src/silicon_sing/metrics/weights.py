"""Pre-trained weights of the paper-profile backends: where they come from, where we look, how we load them.

Notebook: notebooks/04_evaluate.ipynb

Weights are never downloaded unless ``allow_download=True``; a missing file raises
:class:`MissingWeightsError` naming the URL, the file name, where to put it and the env var. A
download is checked against the SHA-256 recorded in its :class:`WeightsSpec` (deleted if it differs).
Weights files are read with ``torch.load(weights_only=True)`` only: a file that needs more than
tensors to unpickle raises :class:`UntrustedCheckpointError` and is never executed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fsutil import UntrustedCheckpointError, load_tensors_only

__all__ = [
    "MissingWeightsError", "WeightsHashError", "WeightsSpec", "PASST_WEIGHTS", "VGGISH_WEIGHTS",
    "UntrustedCheckpointError", "hub_checkpoint_dir", "resolve_weights", "sha256_file", "verify_download",
    "read_state_dict", "torch_device", "weights_id",
]

log = logging.getLogger(__name__)


class MissingWeightsError(FileNotFoundError):
    """Pre-trained weights for a paper-profile backend are not on this machine."""


class WeightsHashError(ValueError):
    """A downloaded weights file does not have the SHA-256 recorded for it."""


@dataclass(frozen=True)
class WeightsSpec:
    """Where a backend's pre-trained weights come from and where we look for them."""

    model: str
    url: str
    filename: str
    env_var: str
    # SHA-256 of the released file; None = unknown, a download is then used unverified (with a warning)
    sha256: str | None = None

    def missing_message(self, looked: list[Path]) -> str:
        """A message naming exactly what to fetch and where to put it."""
        where = "\n".join(f"  - {p}" for p in looked)
        return (
            f"{self.model} weights not found. Looked in:\n{where}\n"
            f"Fetch {self.filename} from\n  {self.url}\n"
            f"and either put it in {hub_checkpoint_dir()} (the torch hub cache; set TORCH_HOME to move it),\n"
            f"or point the environment variable {self.env_var} (or the evaluate.*_weights parameter) at the file.\n"
            f"Or pass allow_download=True (parameter evaluate.allow_download) on a machine that can reach GitHub."
        )


PASST_WEIGHTS = WeightsSpec(
    model="PaSST (passt_s_swa_p16_128_ap476, AudioSet mAP .476)",
    url="https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
    filename="passt-s-f128-p16-s10-ap.476-swa.pt",
    env_var="SILICON_SING_PASST_WEIGHTS",
    # published by several independent projects that pin this release asset (344,665,734 bytes)
    sha256="302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c",
)
VGGISH_WEIGHTS = WeightsSpec(
    model="VGGish (torchvggish port of the AudioSet VGGish)",
    url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
    filename="vggish-10086976.pth",
    env_var="SILICON_SING_VGGISH_WEIGHTS",
    # torch hub convention: the 8 hex digits in the file name are this hash's prefix
    sha256="10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b",
)


def hub_checkpoint_dir() -> Path:
    """``<torch hub dir>/checkpoints``, where torch.hub and timm (hence hear21passt) cache weights."""
    import torch  # lazy: torch loads only for the paper-profile backends

    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(spec: WeightsSpec, weights: str | os.PathLike[str] | None, allow_download: bool) -> Path:
    """The local weights file: explicit path, then ``$env_var``, then the hub cache; else download or raise."""
    looked: list[Path] = []
    for candidate, origin in ((weights, "weights argument"), (os.environ.get(spec.env_var), f"${spec.env_var}")):
        if candidate:
            p = Path(candidate).expanduser()
            if p.is_file():
                return p
            # an explicit path that does not exist is a mistake, not a reason to look elsewhere
            raise MissingWeightsError(f"{origin} points at {p}, which is not a file.\n" + spec.missing_message([p]))
    cached = hub_checkpoint_dir() / spec.filename
    looked.append(cached)
    if cached.is_file():
        return cached
    if allow_download:
        import torch  # lazy: torch loads only for the paper-profile backends

        log.warning("downloading %s weights from %s to %s", spec.model, spec.url, cached)
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(cached), progress=True)  # writes a temp file, then renames
        verify_download(spec, cached)
        return cached
    raise MissingWeightsError(spec.missing_message(looked))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_download(spec: WeightsSpec, path: Path) -> None:
    """Check a freshly downloaded file against ``spec.sha256``; delete it and raise if it differs."""
    if spec.sha256 is None:
        warnings.warn(f"{spec.model}: no SHA-256 is recorded for {spec.filename}; the download from {spec.url} "
                      f"to {path} is unverified", UserWarning, stacklevel=3)
        return
    got = sha256_file(path)
    if got != spec.sha256:
        path.unlink(missing_ok=True)
        raise WeightsHashError(
            f"{spec.model}: the file downloaded from {spec.url} has sha256 {got}, expected {spec.sha256}; "
            f"it was deleted. Retry, or fetch {spec.filename} by hand and check its hash (sha256sum).")


def read_state_dict(path: Path) -> dict[str, Any]:
    """Load a checkpoint's state dict on CPU, tensors only: nothing in the file is ever executed."""
    return load_tensors_only(path)


def torch_device(device: str | None) -> str:
    """The requested torch device, or CUDA when available, else CPU."""
    if device:
        return device
    import torch  # lazy: torch loads only for the paper-profile backends

    return "cuda" if torch.cuda.is_available() else "cpu"



def weights_id(path: Path | None, seed: int) -> str:
    """Identity of the weights for the fingerprint: file name and size, or the random-init seed."""
    return f"weights={path.name}:{path.stat().st_size}" if path else f"random-init:seed={seed}"
