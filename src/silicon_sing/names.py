"""Names from the user's folders turned into identifiers: one place for both ways we fold a name.

- :func:`slugify` — the *identity* of an artist or track in paths and URLs (``track_id``,
  ``segment_id``, run-dir folders; ``notebooks/01_curate.ipynb``). Injective: two different names
  never share a slug (a hash suffix separates names that fold to the same ASCII).
- :func:`match_key` — a *matching* key, deliberately many-to-one, so that "Juice WRLD",
  "juice_wrld" and "juice-wrld" find the same row of the published Table 1
  (``notebooks/04_evaluate.ipynb``). Never used as an identifier.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata


def slugify(name: str) -> str:
    """A filesystem- and URL-safe ASCII name; non-ASCII or special names get a hash suffix."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "x"
    if slug != name:
        # distinct names that fold to the same ASCII slug must not collide
        slug = f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"
    return slug


def match_key(name: str) -> str:
    """Lower-case alphanumerics only, so "Juice WRLD", "juice_wrld" and "juice-wrld" match."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


__all__ = ["slugify", "match_key"]
