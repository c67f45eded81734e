"""Run Vigil's detectors over a NAB corpus as `vigil run` would see each file live, and score them.

Every file is one series (one row) of a single `Pipeline`, built as `vigil run` builds it
(`vigil.engine.build_query_pipeline` on a `vigil.config.Detection`), so the benchmark
follows whatever the shipped defaults are. The files are fed in time order, in blocks of
`block` steps: block ``k`` holds points ``k·block`` to ``(k+1)·block - 1`` of every file
that still has them, each row with its own timestamps. A file that ends inside a block is
padded with missing samples (NaN) after its last point; they are never scored or written.
Rows are independent (a detector's contract), so the score of point ``i`` of a file
depends only on points ``0..i`` of that file, exactly as if it was replayed alone.

Per point the run keeps the anomaly score (``vigil_anomaly_score``; no opinion yet = 0,
as NAB wants a number) and whether an event opened there (what `vigil run` notifies
on). `write_results` writes NAB's results layout; `score_run` scores both with
`vigil.bench.nab_scorer` three ways: the score column with NAB's threshold sweep; the alerts
at the threshold Vigil ships; and the alerts with the decision threshold swept, NAB's
sweep applied to what `vigil run` notifies: the run keeps what the decision saw, and the
decision alone is replayed at every candidate threshold (the scores do not depend on
the threshold, so a replay equals a whole run with that threshold).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vigil.bench.nab_corpus import DataFile
from vigil.bench.nab_scorer import PROFILES, FileScores, Score, prepare, score_corpus
from vigil.config import Detection
from vigil.detection.decision import Decision
from vigil.detection.detectors import DETECTORS
from vigil.engine import build_query_pipeline
from vigil.errors import ConfigError, DataError
from vigil.state import FloatArray

__all__ = [
    "DEFAULT_BLOCK",
    "PROFILE_LABELS",
    "SEEDS",
    "BenchRun",
    "BenchScore",
    "ALERT_GRID",
    "bench_names",
    "detection",
    "epoch_seconds",
    "prepare_corpus",
    "replay_alerts",
    "resolve_names",
    "run_detector",
    "score_run",
    "sweep_alerts",
    "warm_up",
    "write_results",
]

DEFAULT_BLOCK = 4096
_FLAGS = ("holding", "escalated")  # what the pipeline told the decision besides the scores

BoolArray = npt.NDArray[np.bool_]

# The seed project's settings: a detector alone, its own band deciding (no calibration).
SEEDS: dict[str, tuple[str, dict[str, float]]] = {
    "seed-ewma": ("ewma", {"span": 10, "k": 1.0}),
    "seed-zscore": ("zscore", {"window": 100, "std_dev_threshold": 3.0}),
    "seed-iforest": ("iforest", {"window": 100, "contamination": 0.1}),
}

PROFILE_LABELS = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def bench_names() -> list[str]:
    """Every name `--detector` takes besides ``all``: default, each registered detector, the seeds.

    >>> names = bench_names()
    >>> names[0], "ewma" in names, names[-3:]
    ('default', True, ['seed-ewma', 'seed-zscore', 'seed-iforest'])
    """
    return ["default", "record", *sorted(DETECTORS), *SEEDS]


def resolve_names(names: Sequence[str]) -> list[str]:
    """`names` with ``all`` spelled out and repeats dropped; an unknown name raises ConfigError.

    >>> resolve_names(["seed-ewma", "all"])[:2], len(resolve_names(["all"])) == len(bench_names())
    (['seed-ewma', 'default'], True)
    """
    known = bench_names()
    out: list[str] = []
    for name in names:
        if name != "all" and name not in known:
            raise ConfigError(f"detector is {name!r}; write one of {', '.join(known)}, or all")
        out += [n for n in (known if name == "all" else [name]) if n not in out]
    return out


def detection(name: str) -> Detection:
    """The detection settings of a bench entry, as a config file would give them.

    ``default`` is `Detection()` untouched (what `vigil run` does with no config); a
    registered detector runs alone with its defaults; a seed entry runs its detector with
    the seed's parameters and no calibration, so the detector's own band decides.
    """
    if name in SEEDS:
        det, params = SEEDS[name]
        return Detection(detector=det, params={det: dict(params)}, calibrate=False)
    if name == "default":
        return Detection()
    if name == "record":  # the default members with the record calibration tuned for NAB (issue 7's default)
        return Detection(calibration="record", calibration_window=10000)
    if name in DETECTORS:
        return Detection(detector=name)
    raise ConfigError(f"detector is {name!r}; write one of {', '.join(bench_names())}")


def epoch_seconds(timestamps: npt.NDArray[np.datetime64]) -> FloatArray:
    """Timestamps (read as UTC) as epoch seconds.

    >>> epoch_seconds(np.array(["2014-07-01T00:30:00"], dtype="datetime64[us]")).tolist()
    [1404174600.0]
    """
    return timestamps.astype("datetime64[us]").astype(np.int64) / 1e6


@dataclass(frozen=True)
class BenchRun:
    """What one detector gave on every file of a corpus, in the corpus' order.

    `scores` are the anomaly scores (0 where the pipeline had no opinion); `alerts` are
    True where an event opened (`Result.opened`: also where an escalation ends one event
    and opens the next). `seconds` is the wall time of the `Pipeline.update` calls
    (and the slicing of blocks around them), after a warm-up that compiles numba's code.
    """

    name: str
    scores: list[FloatArray]
    alerts: list[BoolArray]
    seconds: float
    settings: Detection | None = None
    seen: list[dict[str, FloatArray]] | None = None  # per file what the decision saw, to replay it

    @property
    def points(self) -> int:
        return sum(s.shape[0] for s in self.scores)

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else math.inf


def warm_up(d: Detection) -> None:
    """Compile (or load from numba's cache) the pipeline's code outside the clock."""
    pipeline = build_query_pipeline(d, "warm-up")
    pipeline.resize(1)
    x = 10.0 + np.sin(np.arange(64.0))
    pipeline.update(np.array([0]), np.arange(64.0)[None], x[None])


def run_detector(
    files: Sequence[DataFile],
    name: str,
    settings: Detection | None = None,
    block: int = DEFAULT_BLOCK,
    clock: Callable[[], float] = time.perf_counter,
) -> BenchRun:
    """Feed every file through one pipeline, one row per file, in time-ordered blocks.

    Parameters
    ----------
    files
        The corpus (`vigil.bench.nab_corpus.load_corpus`), or any labelled files.
    name
        The bench entry (`bench_names`); it names the run and, without `settings`, gives
        the detection settings (`detection`).
    settings
        Detection settings to use instead of the entry's own.
    block
        Steps per `Pipeline.update` call. Results do not depend on it.
    clock
        Measures `BenchRun.seconds`.

    Examples
    --------
    >>> x = 50 + np.random.default_rng(1).normal(0, 1, 600); x[500] = 80
    >>> f = DataFile("demo/a.csv", np.datetime64("2024-01-01") + np.arange(600) * np.timedelta64(60, "s"), x, [])
    >>> r = run_detector([f], "seed-zscore", block=256)
    >>> r.scores[0].shape, bool(r.alerts[0][500]), bool(r.scores[0][500] > r.scores[0][499])
    ((600,), True, True)
    """
    if int(block) != block or block < 1:
        raise ConfigError(f"block is {block!r}; write a whole number >= 1")
    block = int(block)
    d = settings if settings is not None else detection(name)
    pipeline = build_query_pipeline(d, f"bench {name}")
    warm_up(d)
    sizes = np.array([len(f) for f in files], dtype=np.intp)
    times = [epoch_seconds(f.timestamps) for f in files]
    scores = [np.zeros(n) for n in sizes.tolist()]
    alerts = [np.zeros(n, dtype=np.bool_) for n in sizes.tolist()]
    members = [name for name, _ in pipeline.members]
    seen = [
        {"t": times[row], **{k: np.full(n, np.nan)
                             for k in ("x", "score", "expected", "lower", "upper", *_FLAGS, *members)}}
        for row, n in enumerate(sizes.tolist())
    ]
    pipeline.resize(len(files))
    longest = int(sizes.max()) if sizes.size else 0
    started = clock()
    for a in range(0, longest, block):
        rows = np.flatnonzero(sizes > a)
        width = min(block, int(sizes[rows].max()) - a)
        x = np.full((rows.size, width), np.nan)
        t = np.empty((rows.size, width))
        for i, row in enumerate(rows.tolist()):
            m = min(width, int(sizes[row]) - a)
            x[i, :m] = files[row].values[a : a + m]
            t[i, :m] = times[row][a : a + m]
            t[i, m:] = times[row][a + m - 1] + np.arange(1, width - m + 1)  # padding: missing samples
        res = pipeline.update(rows, t, x)
        score = np.nan_to_num(res.score, nan=0.0)
        arrays = {"x": np.where(res.invalid, np.nan, x), "score": res.score, "expected": res.expected,
                  "lower": res.lower, "upper": res.upper, "holding": res.holding.astype(float),
                  "escalated": res.escalated.astype(float), **res.members}
        for i, row in enumerate(rows.tolist()):
            m = min(width, int(sizes[row]) - a)
            scores[row][a : a + m] = score[i, :m]
            alerts[row][a : a + m] = res.opened[i, :m]
            for key, values in arrays.items():
                seen[row][key][a : a + m] = values[i, :m]
    return BenchRun(name, scores, alerts, clock() - started, d, seen)


def replay_alerts(run: BenchRun, threshold: float) -> list[BoolArray]:
    """Where events open if the decision of `run` used `threshold`; the rest as it was.

    >>> x = 50 + np.random.default_rng(1).normal(0, 1, 600); x[500] = 80
    >>> f = DataFile("demo/a.csv", np.datetime64("2024-01-01") + np.arange(600) * np.timedelta64(60, "s"), x, [])
    >>> r = run_detector([f], "default", block=256)
    >>> bool((replay_alerts(r, Detection().threshold)[0] == r.alerts[0]).all())
    True
    """
    if run.settings is None or run.seen is None:
        raise ValueError(f"run {run.name} kept nothing to replay")
    config = dataclasses.replace(run.settings.decision(), threshold=threshold)
    members = [k for k in run.seen[0] if k not in ("t", "x", "score", "expected", "lower", "upper", *_FLAGS)]
    decision = Decision(config, members)
    out = []
    for seen in run.seen:
        state = decision.new_state(1)
        one = {k: v[None, :] for k, v in seen.items()}
        _, _, opened, _ = decision.update(
            state, np.array([0]), one["t"], one["x"], one["score"], one["expected"], one["lower"], one["upper"],
            np.stack([one[m] for m in members]), one["holding"] > 0, one["escalated"] > 0,
        )
        out.append(opened[0])
    return out


# Decision thresholds the alert sweep tries: 1 - 10^-k for k from 2 to 7 in steps of 0.05.
ALERT_GRID = tuple(1.0 - 10.0 ** -(2.0 + 0.05 * i) for i in range(101))


def sweep_alerts(run: BenchRun, prepared: list[FileScores],
                 grid: Sequence[float] = ALERT_GRID) -> dict[str, Score]:
    """Per profile, the alerts at the decision threshold (from `grid`) that score best on the corpus."""
    best: dict[str, Score] = {}
    for threshold in grid:
        flags = [a.astype(np.float64) for a in replay_alerts(run, threshold)]
        for p in PROFILES:
            got = score_corpus(prepared, flags, p, threshold=1.0)
            if p not in best or got.normalised > best[p].normalised:
                best[p] = dataclasses.replace(got, threshold=threshold)
    return best


def _labels(n: int, windows: list[tuple[int, int]]) -> npt.NDArray[np.int8]:
    out = np.zeros(n, dtype=np.int8)
    for a, b in windows:
        out[a : b + 1] = 1
    return out


def write_results(run: BenchRun, files: Sequence[DataFile], out: Path) -> Path:
    """Write NAB's results layout: ``out/<name>/<category>/<name>_<file>.csv``; returns ``out/<name>``.

    A file named without a folder (a labelled CSV at the top of its corpus) goes to ``out/<name>/``.

    Columns ``timestamp,value,anomaly_score,label,alert``: the timestamp and value as the
    data file writes them, the score, 1 inside an anomaly window (NAB's ``label``), and 1
    where an event opened. NAB's own scorer reads these files as they are.
    """
    root = out / run.name
    try:
        for f, score, alert in zip(files, run.scores, run.alerts, strict=True):
            folder = (root / f.name).parent  # the data file's folders; none for a file at the corpus' top
            folder.mkdir(parents=True, exist_ok=True)
            stamps, values = f.texts
            if len(stamps) != len(f):  # not read from a file: write them ourselves
                stamps = np.datetime_as_string(f.timestamps.astype("datetime64[s]")).tolist()
                stamps = [s.replace("T", " ") for s in stamps]
                values = list(map(repr, f.values.tolist()))
            columns = (
                stamps,
                values,
                map(repr, score.tolist()),
                map(str, _labels(len(f), f.windows).tolist()),
                np.where(alert, "1", "0").tolist(),
            )
            body = "".join(",".join(cells) + "\n" for cells in zip(*columns, strict=True))
            (folder / f"{run.name}_{f.stem}").write_text("timestamp,value,anomaly_score,label,alert\n" + body)
    except OSError as exc:
        raise DataError(f"cannot write the results under {root} ({exc.strerror or exc})") from exc
    return root


@dataclass(frozen=True)
class BenchScore:
    """A run's scores per profile: swept over the anomaly score, and of its alerts."""

    name: str
    swept: dict[str, Score]
    shipped: dict[str, Score]
    seconds: float
    points: int
    alerts_swept: dict[str, Score] | None = None

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else math.inf


def prepare_corpus(files: Sequence[DataFile]) -> list[FileScores]:
    return [prepare(len(f), f.windows) for f in files]


def score_run(run: BenchRun, prepared: list[FileScores]) -> BenchScore:
    """Score `run` under every profile.

    ``swept``: NAB's way, the anomaly score with the threshold that does best on this
    corpus. ``shipped``: the alerts, as 0/1 scores at threshold 1, i.e. what `vigil run`
    would have notified with the threshold it ships.
    """
    flags = [a.astype(np.float64) for a in run.alerts]
    return BenchScore(
        run.name,
        swept={p: score_corpus(prepared, run.scores, p) for p in PROFILES},
        shipped={p: score_corpus(prepared, flags, p, threshold=1.0) for p in PROFILES},
        seconds=run.seconds,
        points=run.points,
        alerts_swept=sweep_alerts(run, prepared) if run.seen is not None else None,
    )
