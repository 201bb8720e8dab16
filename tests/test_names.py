"""silicon_sing.names: identifiers (injective) and matching keys (many-to-one) from user names."""

from __future__ import annotations

from silicon_sing.names import match_key, slugify


def test_slugify_is_path_safe_and_never_merges_two_names() -> None:
    assert slugify("drake") == "drake"  # a clean name is its own slug
    names = ["Juice WRLD", "juice_wrld", "juice-wrld", "Beyoncé", "Beyonce", "<script>", "..", "é"]
    slugs = [slugify(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all(s and all(c.isalnum() or c == "-" for c in s) for s in slugs)


def test_match_key_folds_spelling_variants_together() -> None:
    assert match_key("Juice WRLD") == match_key("juice_wrld") == match_key("juice-wrld") == "juicewrld"
    assert match_key("Drake") != match_key("Doja Cat")
