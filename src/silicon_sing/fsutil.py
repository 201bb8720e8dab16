"""Atomic file writes, content hashing and tensors-only loading shared by every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep the real suffix last so libraries that sniff the extension (soundfile) still work
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_json(obj: Any) -> str:
    """Serialise ``obj`` as stable, human-readable JSON."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as pretty JSON atomically."""
    return atomic_write_text(path, to_json(obj))


def atomic_write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> Path:
    """Write one JSON object per line atomically."""
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) + "\n" for r in rows)
    return atomic_write_text(path, text)


def write_if_changed(path: str | os.PathLike[str], text: str) -> bool:
    """Atomically write ``text`` unless the file already holds it; return whether it wrote."""
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(path, text)
    return True


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    """Read a JSON-lines file into a list.

    A torn final line (no trailing newline and not valid JSON: a writer interrupted mid-append) is
    dropped with a warning naming the file; any other undecodable line raises naming file and line.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if n == len(lines) and not line.endswith("\n"):
                warnings.warn(f"{path}: dropped a torn last line {n} (an interrupted write): {line[:80]!r}",
                              stacklevel=2)
                break
            raise ValueError(f"{path}, line {n}, is not valid JSON ({e.msg}); the file is corrupt: restore it, "
                             f"or delete it and rerun the stage that writes it") from e
    return rows


def kept_array(path: str | os.PathLike[str], make: Callable[[], Any], source: object) -> Any:
    """The ``.npy`` array kept at ``path``, else ``make()``'s, saved there atomically (a cache entry).

    An entry that cannot be read (zero bytes, truncated, garbled) is made again, with a warning that
    names it and ``source``, what it is made from.
    """
    import tokenize

    import numpy as np  # lazy: this module is every stage's foundation, most of which never cache an array

    target = Path(path)
    if target.exists():
        try:
            return np.load(target, allow_pickle=False)
        # numpy parses the header's dict with Python's tokenizer: a garbled one raises its errors
        except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as e:
            warnings.warn(f"unreadable cache entry {target} ({type(e).__name__}: {e}); recomputing it from "
                          f"{source}", stacklevel=3)
    arr = np.ascontiguousarray(make())
    with atomic_path(target) as tmp:
        np.save(tmp, arr, allow_pickle=False)
    return arr


def file_sha1(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-1 of a file's bytes, read in chunks."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def text_sha1(text: str) -> str:
    """Hex SHA-1 of a string."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class UntrustedCheckpointError(ValueError):
    """A weights file holds more than tensors (arbitrary pickled objects); we refuse to unpickle it."""


def load_tensors_only(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU (``.safetensors``: safetensors); never unpickles code.

    A file that would need full unpickling raises :class:`UntrustedCheckpointError` naming it and the
    one-liner that re-saves a trusted legacy file as plain tensors.
    """
    import pickle

    import torch

    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except pickle.UnpicklingError as e:
        # torch's message is long; keep its line naming the offending global, e.g. "GLOBAL posix.system"
        what = next((ln.strip().rstrip(".") for ln in str(e).splitlines() if "GLOBAL" in ln),
                    "objects other than tensors")
        raise UntrustedCheckpointError(
            f"{path} holds more than tensors ({what}); loading it with weights_only=False could run "
            f"arbitrary code, so it is refused.\n"
            f"If you trust the file (e.g. a legacy checkpoint you made), re-save its tensors once:\n"
            f"  python -c \"import torch; sd = torch.load('{path}', weights_only=False); "
            f"sd = sd.get('state_dict', sd); torch.save({{k: v for k, v in sd.items() if torch.is_tensor(v)}}, "
            f"'{path}.tensors.pt')\"\n"
            f"or, from that sd, safetensors.torch.save_file(sd, '{Path(path).stem}.safetensors') "
            f"(also accepted), and point the weights parameter at the new file.") from e


class RunLocked(RuntimeError):
    """Another process is already writing this part of the run dir; the message names it and the fix."""


@dataclass(frozen=True)
class HeldLock:
    """A lock :func:`run_lock` holds: its file, and the descriptor that holds it (pass it to a child
    process to keep the lock until that child ends too)."""

    path: Path
    fd: int


def _holder_alive(holder: dict[str, Any]) -> bool | None:
    """Whether the pid a lock file names still runs (None: another host, or no pid recorded)."""
    import socket

    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(path: str | os.PathLike[str], what: str) -> Iterator[HeldLock]:
    """Hold an exclusive, non-blocking ``flock`` on ``path`` (one writer per run dir stage) for the block.

    The holder's pid, host, start time and command are written into the file for the error a second
    writer gets at once (:class:`RunLocked`). The OS releases the lock when the last process holding
    its descriptor exits, however it exits, so a lock file left by dead processes never blocks anyone;
    a child given the descriptor (``HeldLock.fd``) keeps the lock after its parent dies.
    """
    import datetime
    import fcntl
    import socket
    import sys

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8") or "{}")
            except (ValueError, UnicodeDecodeError):
                holder = {}
            pid = holder.get("pid", "?")
            if _holder_alive(holder) is False:
                raise RunLocked(
                    f"{what} is still stopping: {path} was locked by pid {pid} (since {holder.get('started', '?')}), "
                    f"which has exited, and the job it started still holds the lock while it checkpoints and "
                    f"ends (a minute at most). Rerun then; do not delete the file.") from None
            raise RunLocked(
                f"{what} is already running: {path} is locked by pid {pid} on {holder.get('host', '?')} "
                f"(since {holder.get('started', '?')}), command: {holder.get('command', '?')}\n"
                f"Wait for it to finish, or stop it (kill {pid}; a training job checkpoints on SIGTERM) and "
                f"rerun. The lock goes away with that process; do not delete the file.") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv) or sys.executable}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        yield HeldLock(path, fd)
    finally:
        os.close(fd)  # releases the flock once no child holds the descriptor either
