"""The Numenta Anomaly Benchmark: read its corpus, score results by its rules, run detectors on it."""
