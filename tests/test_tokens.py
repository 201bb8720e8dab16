"""Token cache (silicon_sing.tokens): each segment encoded once, sharded over ranks, keyed by the codec."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codec_spy import CodecBatchSizes
from silicon_sing import tokens as tk
from silicon_sing.data import load_training_examples
from silicon_sing.models import nano_musicgen
from test_train import make_fake_run


def test_token_cache_equals_on_the_fly_encoding(tmp_path: Path) -> None:
    run = make_fake_run(tmp_path / "run", tracks_per_artist=1, segments_per_track=2)
    paths = [e.path for e in load_training_examples(run, "full", "train")]
    codec = nano_musicgen(seed=0).compression_model
    fp = tk.compression_fingerprint(codec)
    directory = tk.cache_dir(run / "tokens", "full", fp)
    # two "ranks" encode their shares; together they cover everything once
    shard0 = tk.build_token_cache(codec, paths, directory, rank=0, world_size=2)
    written0 = {p for p in shard0 if p.exists()}
    shard1 = tk.build_token_cache(codec, paths, directory, rank=1, world_size=2)
    assert shard0 == shard1 and len(written0) == (len(paths) + 1) // 2 and all(p.exists() for p in shard1)
    for path, file in zip(paths, shard1):
        on_the_fly = tk.encode_audio(codec, tk.load_segment(path, codec.sample_rate)[None])[0]
        assert torch.equal(tk.load_codes(file), on_the_fly)
        assert file.is_relative_to(run / "tokens" / "full" / fp)
    mtimes = [f.stat().st_mtime_ns for f in shard1]
    assert tk.build_token_cache(codec, paths, directory) == shard1
    assert [f.stat().st_mtime_ns for f in shard1] == mtimes  # nothing re-encoded
    with torch.no_grad():
        next(codec.parameters()).add_(1e-3)
    assert tk.compression_fingerprint(codec) != fp  # other codec weights, other cache dir


def test_segments_are_encoded_clip_by_clip_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token cache's batches reach the codec one clip at a time on a CPU (models.codec_io), with the batch's codes."""
    codec = nano_musicgen(seed=0).compression_model
    wav = torch.randn(3, 1, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        whole = codec.encode(wav)[0].long()
    sizes = CodecBatchSizes(codec, monkeypatch)
    assert torch.equal(tk.encode_audio(codec, wav), whole)
    assert sizes.encoded == [1, 1, 1]
