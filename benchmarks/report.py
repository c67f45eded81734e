"""Write a benchmark's table into its own section of BENCHMARKS.md, with machine and command.

The writer itself is `vigil.bench.markdown`, which `vigil bench nab` uses too.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from vigil.bench.markdown import section_header
from vigil.bench.markdown import write_section as _write_section

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["finish", "header", "run_child", "write_section"]


def header(title: str) -> str:
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    return section_header(title, command)


def write_section(name: str, body: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace (or append) the section between this benchmark's markers."""
    _write_section(name, body, path)


ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def run_child(script: str, *args: str) -> dict[str, float]:
    """Run `script --child ARGS` in a fresh process with one thread; its last stdout line is JSON."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args], env={**os.environ, **ONE_THREAD},
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def finish(name: str, body: str, quick: bool) -> None:
    """Print the section (quick runs) or write it into BENCHMARKS.md."""
    if quick:
        print(body)
    else:
        write_section(name, body)
        print("written to BENCHMARKS.md")
