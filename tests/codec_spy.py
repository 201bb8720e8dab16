"""A spy on a compression model's batches (tests of ``models.codec_io`` and its callers)."""

from __future__ import annotations

import pytest


class CodecBatchSizes:
    """Wraps a compression model's ``encode``/``decode`` and records the batch size of every call."""

    def __init__(self, codec, monkeypatch: pytest.MonkeyPatch) -> None:
        self.encoded: list[int] = []
        self.decoded: list[int] = []
        encode, decode = codec.encode, codec.decode

        def spy_encode(x):
            self.encoded.append(x.shape[0])
            return encode(x)

        def spy_decode(codes, scale=None):
            self.decoded.append(codes.shape[0])
            return decode(codes, scale)

        monkeypatch.setattr(codec, "encode", spy_encode)
        monkeypatch.setattr(codec, "decode", spy_decode)
