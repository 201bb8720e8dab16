"""Sphinx hooks that keep the built book self-contained and its pages free of console errors."""

from __future__ import annotations

from typing import Any


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Drop repeated inline scripts (sphinx-thebe registers its config once per read pass)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    kept = []
    for s in scripts:
        # the same inline script is registered once with filename None and once with ''
        key = (str(getattr(s, "filename", s) or ""), str(getattr(s, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            kept.append(s)
    context["script_files"] = kept


def setup(app: Any) -> dict[str, Any]:
    """Register the hooks."""
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
