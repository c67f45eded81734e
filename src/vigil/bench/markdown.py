"""BENCHMARKS.md: one section per benchmark, each saying the machine, the date and the command.

Shared by `vigil bench nab` and the scripts in ``benchmarks/`` (``benchmarks/report.py``).
A section lives between the markers ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``;
writing it again replaces it and leaves the rest of the file alone.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

__all__ = ["machine", "section_header", "write_section"]

_NEW_FILE = "# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each section says how it was made.\n\n"


def machine() -> str:
    """CPU model, cores, memory, OS and Python of this machine, on one line."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def section_header(title: str, command: str) -> str:
    """The title, then the machine, the date (UTC) and the command as a list.

    >>> print(section_header("T", "vigil bench nab").split("- machine")[0])
    ## T
    <BLANKLINE>
    <BLANKLINE>
    """
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"## {title}\n\n- machine: {machine()}\n- date: {now}\n- command: `{command}`\n"


def write_section(name: str, body: str, path: Path) -> None:
    """Replace (or append) the section between this benchmark's markers in `path`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else _NEW_FILE
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + block + ("\n" + after if after else "")
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)
