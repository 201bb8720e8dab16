"""Tests for silicon_sing.metrics.weights: finding, verifying and safely loading pre-trained weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from silicon_sing.metrics.passt import PasstBackend
from silicon_sing.metrics.vggish import VggishBackend
from silicon_sing.metrics.weights import PASST_WEIGHTS, VGGISH_WEIGHTS, MissingWeightsError, resolve_weights
from stems import malicious_pickle, tone

SR = 32000


def test_weights_loading_path_roundtrip(tmp_path, vggish, passt):
    import torch

    path = tmp_path / "vggish.pth"
    torch.save(vggish.model.state_dict(), path)
    loaded = VggishBackend(pretrained=True, weights=path, seed=123, device="cpu")
    x = tone(seconds=2.0)
    np.testing.assert_allclose(loaded.embed(x, SR), vggish.embed(x, SR), atol=1e-5)
    assert loaded.fingerprint != vggish.fingerprint and "vggish.pth" in loaded.fingerprint
    path = tmp_path / "passt.pt"
    torch.save(passt.model.net.state_dict(), path)
    loaded_p = PasstBackend(pretrained=True, weights=path, seed=123, window_seconds=0.5, device="cpu")
    np.testing.assert_allclose(loaded_p.window_probs(x[:16000], SR), passt.window_probs(x[:16000], SR), atol=1e-5)
    assert "passt.pt" in loaded_p.fingerprint


def test_missing_weights_raise_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(PASST_WEIGHTS.env_var, raising=False)
    monkeypatch.delenv(VGGISH_WEIGHTS.env_var, raising=False)
    for cls, spec in ((PasstBackend, PASST_WEIGHTS), (VggishBackend, VGGISH_WEIGHTS)):
        with pytest.raises(MissingWeightsError) as e:
            cls(pretrained=True)
        msg = str(e.value)
        assert spec.url in msg and spec.filename in msg and spec.env_var in msg and "allow_download" in msg
        assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    monkeypatch.setenv(VGGISH_WEIGHTS.env_var, str(tmp_path / "nope.pth"))
    with pytest.raises(MissingWeightsError, match="nope.pth"):
        VggishBackend(pretrained=True)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / PASST_WEIGHTS.filename).write_bytes(b"x")
    assert resolve_weights(PASST_WEIGHTS, None, allow_download=False) == hub / PASST_WEIGHTS.filename


def test_weight_urls_match_the_libraries():
    from hear21passt.models.passt import default_cfgs
    from torchvggish import torchvggish

    assert default_cfgs[PasstBackend.arch]["url"] == PASST_WEIGHTS.url
    assert torchvggish.VGGISH_WEIGHTS == VGGISH_WEIGHTS.url
    assert PASST_WEIGHTS.url.endswith(PASST_WEIGHTS.filename) and VGGISH_WEIGHTS.url.endswith(VGGISH_WEIGHTS.filename)




def test_a_malicious_weights_file_is_never_unpickled(tmp_path: Path) -> None:
    from silicon_sing.metrics.weights import UntrustedCheckpointError, read_state_dict

    marker = tmp_path / "pwned"
    bad = malicious_pickle(tmp_path / "vggish-evil.pth", marker)
    with pytest.raises(UntrustedCheckpointError) as e:
        read_state_dict(bad)
    msg = str(e.value)
    assert str(bad) in msg and "safetensors" in msg and "weights_only" in msg
    with pytest.raises(UntrustedCheckpointError, match="vggish-evil.pth"):
        VggishBackend(pretrained=True, weights=bad, device="cpu")
    assert not marker.exists()


def test_weight_hashes_follow_the_torch_hub_file_name_convention() -> None:
    for spec in (PASST_WEIGHTS, VGGISH_WEIGHTS):
        assert spec.sha256 is None or len(spec.sha256) == 64
    assert VGGISH_WEIGHTS.sha256 and VGGISH_WEIGHTS.sha256.startswith("10086976")


def _fake_download(payload: bytes):
    def download(url: str, dst: str, hash_prefix=None, progress=True) -> None:
        Path(dst).write_bytes(payload)
    return download


def test_a_download_with_the_wrong_hash_is_deleted_and_refused(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    from silicon_sing.metrics.weights import WeightsSpec

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(VGGISH_WEIGHTS.env_var, raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _fake_download(b"not the weights"))
    with pytest.raises(ValueError, match="sha256") as e:
        resolve_weights(VGGISH_WEIGHTS, None, allow_download=True)
    assert not isinstance(e.value, MissingWeightsError)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / VGGISH_WEIGHTS.filename
    assert not cached.exists() and VGGISH_WEIGHTS.url in str(e.value)

    good = b"the real weights"
    spec = replace(VGGISH_WEIGHTS, sha256=hashlib.sha256(good).hexdigest(), filename="w.pth")
    monkeypatch.setattr(torch.hub, "download_url_to_file", _fake_download(good))
    assert resolve_weights(spec, None, allow_download=True).read_bytes() == good

    unknown = WeightsSpec(model="M", url="https://example.invalid/m.pt", filename="m.pt", env_var="X_W", sha256=None)
    with pytest.warns(UserWarning, match="unverified"):
        assert resolve_weights(unknown, None, allow_download=True).read_bytes() == good


def test_weights_given_as_safetensors_load_without_pickle(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from silicon_sing.metrics.weights import read_state_dict

    sd = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3)}
    save_file(sd, str(tmp_path / "vggish.safetensors"))
    got = read_state_dict(tmp_path / "vggish.safetensors")
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
