"""The built book in a real browser: pages load cleanly, audio plays, glued numbers are shown."""

from __future__ import annotations

import ast
import functools
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

from stems import glued

REPO = Path(__file__).resolve().parents[1]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BOOK_BUDGET_MB = 25  # the smoke book, theme assets included; audio is MP3 inlined per page
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def served_book(smoke_book):
    """Serve the built HTML on a free localhost port for the duration of the module."""
    html_dir, _, _ = smoke_book
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", html_dir
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that does not log every request to stderr."""

    def log_message(self, *args) -> None:  # noqa: D401
        pass


# what a reader must never see: machine paths (anywhere in the HTML) and Python warnings (in the text)
ABSOLUTE_PATH = re.compile(r"(?:^|[\s\"'(=\[,])(/(?:root|home|tmp|work|usr|opt|var|mnt|private|Users)/[^\s\"'<>]*)")
WARNING_TEXT = re.compile(r"\b(?:\w+Warning\b[:(]|warnings\.warn|WeightNorm\.apply)")

# every element of the main content must fit the content column at this width (px of slack)
OVERFLOW_JS = """() => {
    const col = document.querySelector('article.bd-article');
    const cs = getComputedStyle(col);
    const right = col.getBoundingClientRect().right - parseFloat(cs.paddingRight) + 1;
    const bad = [];
    for (const el of col.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        const name = `${el.tagName.toLowerCase()}.${el.className || ''}`;
        if (r.right > right) bad.push(`${name} right ${Math.round(r.right)} > ${Math.round(right)}`);
        // content cut off or hidden behind a scroll bar inside a box that itself fits
        const ov = getComputedStyle(el).overflowX;
        if (ov !== 'visible' && el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'AUDIO')
            bad.push(`${name} scrolls: ${el.scrollWidth} > ${el.clientWidth}`);
    }
    return bad.slice(0, 5);
}"""


def machine_strings(params) -> list[str]:
    """Absolute locations of this machine that a built page must not contain."""
    return sorted({str(REPO), str(Path(params.run_dir).resolve()), str(Path.home()), sys.prefix}, key=len)


GLUE_REF = re.compile(r"\{glue(?::text)?\}`(?:([^`:]+\.ipynb)::)?([A-Za-z0-9_]+)(?::[^`]*)?`")


def referenced_glue(page: str, params) -> dict[str, str]:
    """Glue keys a page's source references, with the plain text their notebook stored for them."""
    stem = Path(page).with_suffix("").name
    source = (REPO / "notebooks" / f"{stem}.ipynb") if page.startswith("book/executed/") else \
        (REPO / "book" / f"{stem}.md")
    if not source.exists():
        return {}
    out = {}
    for nb_ref, key in GLUE_REF.findall(source.read_text()):
        nb_name = Path(nb_ref).name if nb_ref else f"{stem}.ipynb"
        values = glued(params.run.notebooks / nb_name)
        if key in values:
            raw = values[key].strip()
            try:  # a glued str is stored as its repr: read it back (escapes such as \xa0 included)
                shown = str(ast.literal_eval(raw)) if raw[:1] in "'\"" else raw
            except (ValueError, SyntaxError):
                shown = raw.strip("'\"")
            out[f"{nb_name}::{key}"] = shown.replace("\u00a0", " ")
    return out


def book_pages(html_dir: Path) -> list[str]:
    """Content pages of the book (not search, genindex or theme assets)."""
    skip = {"search.html", "genindex.html", "index.html"}
    return sorted(str(p.relative_to(html_dir)) for p in html_dir.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # includes building the smoke run and the book (fixture setup)
def test_every_page_loads_plays_audio_and_shows_glued_numbers(served_book, smoke_run, tmp_path_factory) -> None:
    """Headless Chromium: no console errors, every <audio> has a positive duration, glue present."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`make browser-deps`)")
    from playwright.sync_api import sync_playwright

    base, html_dir = served_book
    params, _ = smoke_run
    pages = book_pages(html_dir)
    assert any(p.startswith("book/executed/01_curate") for p in pages)
    shots = tmp_path_factory.mktemp("screenshots")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        # network failures are recorded below with their URL, so their generic console echo is skipped
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        page.on("requestfailed", lambda r: errors.append(f"{page.url}: request failed {r.url} ({r.failure})"))
        page.on("response", lambda r: errors.append(f"{page.url}: HTTP {r.status} {r.url}") if r.status >= 400 else None)
        audio_total = 0
        glue_checked = 0
        machine = machine_strings(params)
        for rel in pages:
            page.goto(f"{base}/{rel}", wait_until="load")
            durations = page.evaluate("""async () => {
                const els = [...document.querySelectorAll('audio')];
                return Promise.all(els.map(a => new Promise(res => {
                    const done = () => res(a.duration);
                    if (a.readyState >= 1) return done();
                    a.addEventListener('loadedmetadata', done, {once: true});
                    a.addEventListener('error', () => res(-1), {once: true});
                    a.preload = 'metadata'; a.load();
                    setTimeout(() => res(-2), 15000);
                })));
            }""")
            assert all(d > 0 for d in durations), f"{rel}: audio durations {durations}"
            audio_total += len(durations)
            # Sphinx's smartquotes turn ' into ’ in prose
            text = page.inner_text("article.bd-article").replace("\u2019", "'").replace("\u00a0", " ")
            for name, shown in referenced_glue(rel, params).items():
                assert shown in text, f"glued value {name}={shown!r} missing from {rel}"
                glue_checked += 1
            assert "between" not in text or not re.search(r"between (\d+) and \1\b", text), f"{rel}: 'between n and n'"
            paths = ABSOLUTE_PATH.findall(text)
            assert not paths, f"{rel} shows machine paths: {paths[:3]}"
            source = (html_dir / rel).read_text()
            assert not [m for m in machine if m in source], f"{rel} contains a machine path"
            assert not WARNING_TEXT.search(text), f"{rel} shows warning text: {WARNING_TEXT.search(text).group(0)!r}"
            overflow = page.evaluate(OVERFLOW_JS)
            assert not overflow, f"{rel} at 1280 px: wider than the content column: {overflow}"
            if rel.startswith("book/executed/04_evaluate"):
                table = page.locator("table.silicon-table1").first
                table.scroll_into_view_if_needed()
                table.screenshot(path=str(shots / "table1.png"))
                assert page.locator("table.silicon-table1-published").count() == 1  # the paper's, apart
                assert page.locator("table.silicon-directions").count() == 1
            if rel.startswith("book/executed/05_listen"):
                page.evaluate("() => document.querySelector('.listen-example').scrollIntoView()")
                page.screenshot(path=str(shots / "listening-room.png"), full_page=False)
                # at 800 px the four players of an example still sit side by side, none cut off
                page.set_viewport_size({"width": 800, "height": 900})
                assert not page.evaluate(OVERFLOW_JS), f"{rel} overflows at 800 px"
                row = page.evaluate("""() => [...document.querySelector('.listen-grid').children]
                    .map(c => { const r = c.querySelector('audio').getBoundingClientRect(); return [r.left, r.width]; })""")
                assert len(row) == 4 and all(w >= 120 for _, w in row), f"players at 800 px: {row}"
                page.evaluate("() => document.querySelector('.listen-example').scrollIntoView()")
                page.screenshot(path=str(shots / "listening-room-800.png"), full_page=False)
                page.set_viewport_size({"width": 1280, "height": 900})
        browser.close()
    # ignore the favicon probe some Chromium builds make against a server that has none
    real = [e for e in errors if not re.search(r"favicon\.ico", e)]
    assert not real, "\n".join(real)
    assert audio_total >= 9 + 4 * 9  # the dataset's 3 × 3 table and at least 9 listening-room rows
    assert glue_checked >= 50
    assert (shots / "listening-room.png").stat().st_size > 10_000
    assert (shots / "table1.png").stat().st_size > 5_000
    print(f"screenshots: {shots}")


@pytest.mark.slow
def test_book_stays_within_its_size_budget(smoke_book) -> None:
    """The smoke book's HTML (theme included) stays under the budget; no page is bloated by audio."""
    html_dir, _, _ = smoke_book
    total = sum(p.stat().st_size for p in html_dir.rglob("*") if p.is_file())
    assert total < BOOK_BUDGET_MB * 2**20, f"built book is {total / 2**20:.1f} MB"
    biggest = max((p.stat().st_size, p.name) for p in html_dir.rglob("*.html"))
    assert biggest[0] < 4 * 2**20, f"{biggest[1]} is {biggest[0] / 2**20:.1f} MB"
