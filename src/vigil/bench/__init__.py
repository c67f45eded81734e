"""Benchmarks of the detectors on labelled data: corpora, scorers, runners, the BENCHMARKS.md writer.

`nab_corpus` reads the Numenta Anomaly Benchmark, `nab_scorer` scores by its rules,
`nab_run` streams the corpus through a pipeline as `vigil run` would and tabulates the
scores; `markdown` writes a section of BENCHMARKS.md with the machine, date and command.
The noise suite counts false alarms on calm series: `noise` generates them, `noise_run`
streams them and counts the events opened, `noise_table` tabulates the rates.
"""

from __future__ import annotations

__all__: list[str] = []
