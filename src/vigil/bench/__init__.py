"""Benchmarks of the detectors on labelled data: corpora, scorers, runners, the BENCHMARKS.md writer.

`nab_corpus` reads the Numenta Anomaly Benchmark, `nab_scorer` scores by its rules,
`nab_run` streams the corpus through a pipeline as `vigil run` would and tabulates the
scores; `labelled` reads any labelled corpus (NAB's layout or CSV files with a label
column), `events` scores alerts event by event as an operator counts pages and
`events_table` tabulates that; `markdown` writes a section of BENCHMARKS.md with the
machine, date and command. The noise suite counts false alarms on calm series: `noise`
generates them, `noise_run` streams them and counts the events opened, `noise_table`
tabulates the rates.
"""

from __future__ import annotations

__all__: list[str] = []
