"""Time series: UCR/UEA classification sets in their ``.ts`` format, and windowed forecasting series.

Letters: N examples, C channels, T time steps, L input window, H horizon, m season length.

**Classification** (``kind="signal"``). The UCR/UEA archive's ``.ts`` files (Bagnall et al.) are read
by :func:`read_ts`, our own parser of the format, so any archive problem a user has on disk loads
with ``load_ucr("FordA", data_dir=DIR)``. The sets sktime ships inside its wheel
(``sktime/datasets/data/<Name>/<Name>_{TRAIN,TEST}.ts``) are registered by name — ``gunpoint``,
``italy_power_demand``, ``basic_motions``, ``japanese_vowels``, ``arrow_head``, ``osu_leaf``,
``acsf1``, ``plaid`` and the two regression problems ``tecator`` and ``covid3month`` — and are read
from the installed package folder without importing sktime (offline, ~50 ms). Official train/test
split; ``x`` is channels-first float32 (N, C, T); labels are 0..K−1 in the order of the file's
``@classLabel`` line, whose names become ``DatasetInfo.classes``. Unequal-length problems
(JapaneseVowels, PLAID) are padded with zeros at the end to the longest series of either split, and
``ArrayDataset.lengths`` holds each true length. Values are as published (the archive's sets are
mostly z-normalised per series already).

**Forecasting** (``kind="signal"``, ``task="regression"``): ``airline`` (Box & Jenkins, 144 monthly
totals, shipped by sktime), ``sunspots`` (yearly, 1700–2008) and ``co2`` (Mauna Loa, weekly
1958–2001 averaged to 526 months), the latter two shipped by statsmodels. Each becomes windows: input
``x`` (N, 1, L) → target ``y`` (N, H). The split is chronological: the last ``n_test`` points are the
test period; a train window's L + H points all lie before it, a test window's H targets all lie in
it (its input may reach back into the train period — that is history, not leakage). Both are
standardised with the mean and standard deviation of the train period only
(:func:`forecast_spec` gives them back, to report errors in the series' units). :func:`series`
returns the raw series for baselines, and :func:`seasonal_naive` / :func:`mase` are the seasonal
naive forecast and the mean absolute scaled error (Hyndman & Koehler 2006) on those raw values.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archlab.data.core import ArrayDataset, DatasetInfo, register_dataset
from archlab.utils.errors import DataError, UnknownDatasetError

# ---------------------------------------------------------------------------------------------
# locating files inside installed packages (never imported: only their data files are read)


def package_dir(package: str, install: str) -> Path:
    """The folder of an installed package, found without importing it; DataError names ``install``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"this data set needs the package '{package}': {install}")
    return Path(next(iter(spec.submodule_search_locations)))


_SKTIME = "pip install 'archlab[timeseries]' (or: pip install sktime)"
_STATSMODELS = "pip install 'archlab[timeseries]' (or: pip install statsmodels)"


def _sktime_data() -> Path:
    return package_dir("sktime", _SKTIME) / "datasets" / "data"


# ---------------------------------------------------------------------------------------------
# the .ts format


@dataclass(frozen=True)
class TsFile:
    """A parsed ``.ts`` file: one (C, T_i) array per case, plus labels (str) or targets (float)."""

    problem: str
    series: list[np.ndarray]  # each (C, T_i), float64, NaN where the file says '?'
    labels: list[str]  # class label per case; empty for regression files
    targets: np.ndarray | None  # (N,) float for @targetLabel files
    class_labels: tuple[str, ...]  # the header's @classLabel list, in its order


def read_ts(path: str | Path) -> TsFile:
    """Parse a UCR/UEA ``.ts`` file (sktime/aeon format): ``@`` header lines, then ``@data``.

    A case is one line: channels separated by ``:``, values within a channel by ``,``, and the class
    label (``@classLabel true …``) or regression target (``@targetLabel true``) last. ``?`` is a
    missing value. Time-stamped files (``@timeStamps true``) are not supported.
    """
    path = Path(path)
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    last: list[str] = []
    in_data = False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}:{lineno}: expected a '@' header line before @data")
            key, _, value = line[1:].partition(" ")
            if key.lower() == "data":
                in_data = True
            else:
                header[key.lower()] = value.strip()
            continue
        fields = line.split(":")
        has_label = _flag(header, "classlabel") or _flag(header, "targetlabel")
        dims, label = (fields[:-1], fields[-1].strip()) if has_label else (fields, "")
        try:
            rows = [np.array([float(v) if v.strip() != "?" else np.nan for v in d.split(",")]) for d in dims]
        except ValueError as e:
            raise DataError(f"{path}:{lineno}: not a number ({e}); time-stamped .ts files are not supported") from e
        if len({len(r) for r in rows}) != 1:
            raise DataError(f"{path}:{lineno}: channels of one case differ in length")
        series.append(np.stack(rows))
        last.append(label)
    if not in_data:
        raise DataError(f"{path}: no @data section: not a .ts file")
    if _flag(header, "timestamps"):
        raise DataError(f"{path}: time-stamped .ts files are not supported")
    class_labels = tuple(header.get("classlabel", "").split()[1:]) if _flag(header, "classlabel") else ()
    targets = np.array([float(t) for t in last]) if _flag(header, "targetlabel") else None
    return TsFile(
        problem=header.get("problemname", path.stem.rsplit("_", 1)[0]),
        series=series,
        labels=last if class_labels else [],
        targets=targets,
        class_labels=class_labels,
    )


def _flag(header: dict[str, str], key: str) -> bool:
    return header.get(key, "false").split()[:1] == ["true"]


# ---------------------------------------------------------------------------------------------
# UCR/UEA classification (and the two bundled regression problems)


@dataclass(frozen=True)
class _Ucr:
    problem: str  # archive name, also the file stem
    train: int
    test: int
    channels: int
    length: int  # longest series over both splits (the padded T)
    classes: tuple[str, ...]  # () for regression
    min_length: int | None = None  # set for unequal-length problems
    reference: tuple[tuple[str, str], ...] = ()  # (model, test accuracy)
    reference_source: str = ""
    citation: str = ""


_FAWAZ = "Fawaz et al., Deep learning for time series classification: a review, DMKD 2019"
# the authors' repository (hfawaz/dl-4-tsc), results/results-{uea,mts}-avg-std.csv: mean test accuracy of 10 runs
_AVG10 = "Fawaz et al. 2019, mean of 10 runs (dl-4-tsc results/*-avg-std.csv)"

UCR_BUNDLED: dict[str, _Ucr] = {
    "gunpoint": _Ucr(
        "GunPoint", 50, 150, 1, 150, ("1", "2"),
        reference=(("MLP", "92.8%"), ("FCN", "100%"), ("ResNet", "99.1%")), reference_source=_FAWAZ,
        citation="Ratanamahatana & Keogh 2005; UCR archive (Dau et al. 2019)",
    ),
    "italy_power_demand": _Ucr(
        "ItalyPowerDemand", 67, 1029, 1, 24, ("1", "2"),
        reference=(("MLP", "95.3%"), ("FCN", "96.3%"), ("ResNet", "96.2%")), reference_source=_FAWAZ,
        citation="Keogh et al. 2006; UCR archive (Dau et al. 2019)",
    ),
    "basic_motions": _Ucr(
        "BasicMotions", 40, 40, 6, 100, ("Standing", "Running", "Walking", "Badminton"),
        citation="Clements 2016; UEA multivariate archive (Bagnall et al. 2018)",
    ),
    "japanese_vowels": _Ucr(
        "JapaneseVowels", 270, 370, 12, 29, tuple(str(i) for i in range(1, 10)), min_length=7,
        reference=(("MLP", "97.6%"), ("FCN", "99.3%"), ("ResNet", "99.2%")), reference_source=_AVG10,
        citation="Kudo, Toyama & Shimbo 1999; UEA multivariate archive (Bagnall et al. 2018)",
    ),
    "arrow_head": _Ucr(
        "ArrowHead", 36, 175, 1, 251, ("0", "1", "2"),
        reference=(("MLP", "77.8%"), ("FCN", "84.3%"), ("ResNet", "84.5%")), reference_source=_AVG10,
        citation="Ye & Keogh 2009; UCR archive (Dau et al. 2019)",
    ),
    "osu_leaf": _Ucr(
        "OSULeaf", 200, 242, 1, 427, tuple(str(i) for i in range(1, 7)),
        reference=(("MLP", "55.7%"), ("FCN", "97.7%"), ("ResNet", "97.9%")), reference_source=_AVG10,
        citation="Gandhi 2002; UCR archive (Dau et al. 2019)",
    ),
    "acsf1": _Ucr(
        "ACSF1", 100, 100, 1, 1460, tuple(str(i) for i in range(10)),
        citation="Gisler et al. 2013; UCR archive (Dau et al. 2019)",
    ),
    "plaid": _Ucr(
        "PLAID", 537, 537, 1, 1344, tuple(str(i) for i in range(11)), min_length=100,
        citation="Gao et al. 2014; UCR archive (Dau et al. 2019)",
    ),
    "tecator": _Ucr(
        "Tecator", 172, 43, 1, 100, (),
        citation="Tecator meat spectra; Monash TS extrinsic regression archive (Tan et al. 2021)",
    ),
    "covid3month": _Ucr(
        "Covid3Month", 140, 61, 1, 84, (),
        citation="Monash TS extrinsic regression archive (Tan et al. 2021)",
    ),
}  # fmt: skip
_BY_PROBLEM = {u.problem.lower(): key for key, u in UCR_BUNDLED.items()}


def _ucr_files(problem: str, data_dir: str | None) -> tuple[Path, Path]:
    """``<Name>_TRAIN.ts``/``<Name>_TEST.ts`` in ``data_dir`` (or ``data_dir/<Name>``), else in sktime."""
    candidates = []
    if data_dir is not None:
        candidates += [Path(data_dir) / problem, Path(data_dir)]
    if problem.lower() in _BY_PROBLEM:
        candidates.append(_sktime_data() / problem)
    for folder in candidates:
        tr, te = folder / f"{problem}_TRAIN.ts", folder / f"{problem}_TEST.ts"
        if tr.is_file() and te.is_file():
            return tr, te
    where = ", ".join(str(c) for c in candidates)
    raise DataError(f"no {problem}_TRAIN.ts / {problem}_TEST.ts found (looked in {where})")


@functools.cache
def _read_pair(train_path: Path, test_path: Path) -> dict[str, ArrayDataset | tuple[str, ...]]:
    train, test = read_ts(train_path), read_ts(test_path)
    classes = train.class_labels or tuple(sorted(set(train.labels)))
    t_max = max(s.shape[1] for s in train.series + test.series)
    ragged = any(s.shape[1] != t_max for s in train.series + test.series)  # then both splits carry lengths
    out: dict[str, ArrayDataset | tuple[str, ...]] = {"classes": classes if train.targets is None else ()}
    for split, f in (("train", train), ("test", test)):
        lengths = np.array([s.shape[1] for s in f.series])
        x = np.zeros((len(f.series), f.series[0].shape[0], t_max), dtype=np.float32)  # (N, C, T), zero-padded
        for i, s in enumerate(f.series):
            x[i, :, : s.shape[1]] = s
        if f.targets is not None:
            y = torch.as_tensor(f.targets, dtype=torch.float32)[:, None]  # (N, 1)
        else:
            index = {c: k for k, c in enumerate(classes)}
            unknown = sorted(set(f.labels) - set(index))
            if unknown:
                raise DataError(f"{train_path.parent}: labels {unknown} are not in @classLabel {list(classes)}")
            y = torch.as_tensor([index[c] for c in f.labels], dtype=torch.long)
        out[split] = ArrayDataset(
            torch.from_numpy(x), y, lengths=torch.as_tensor(lengths, dtype=torch.long) if ragged else None
        )
    return out


def load_ucr(name: str, split: str = "train", data_dir: str | None = None) -> ArrayDataset:
    """Any UCR/UEA problem by archive name (``"GunPoint"``) or registered name (``"gunpoint"``).

    Bundled problems need no ``data_dir``; any other archive problem is read from
    ``data_dir/<Name>/<Name>_{TRAIN,TEST}.ts`` (or ``data_dir/<Name>_TRAIN.ts``).
    """
    key = _BY_PROBLEM.get(name.lower(), name)
    problem = UCR_BUNDLED[key].problem if key in UCR_BUNDLED else name
    if key not in UCR_BUNDLED:
        on_disk = sorted(p.name[: -len("_TRAIN.ts")] for p in _glob_train(data_dir))
        if problem not in on_disk:
            raise UnknownDatasetError(name, [u.problem for u in UCR_BUNDLED.values()] + list(UCR_BUNDLED) + on_disk)
    if split not in ("train", "test"):
        raise DataError(f"UCR problem '{problem}' has splits train and test, not '{split}'")
    ds = _read_pair(*_ucr_files(problem, data_dir))[split]
    assert isinstance(ds, ArrayDataset)
    return ArrayDataset(ds.x, ds.y, name=key, split=split, lengths=ds.lengths)


def _glob_train(data_dir: str | None) -> list[Path]:
    if data_dir is None or not Path(data_dir).is_dir():
        return []
    return list(Path(data_dir).glob("*_TRAIN.ts")) + list(Path(data_dir).glob("*/*_TRAIN.ts"))


def ucr_classes(name: str, data_dir: str | None = None) -> tuple[str, ...]:
    """Class names of a UCR problem in label order (label k is ``ucr_classes(name)[k]``)."""
    key = _BY_PROBLEM.get(name.lower(), name)
    problem = UCR_BUNDLED[key].problem if key in UCR_BUNDLED else name
    classes = _read_pair(*_ucr_files(problem, data_dir))["classes"]
    assert isinstance(classes, tuple)
    return classes


def _register_ucr(key: str, u: _Ucr) -> None:
    notes = f"UCR/UEA problem '{u.problem}', official split; x is (N, C, T) channels-first"
    if u.min_length is not None:
        notes += (
            f"; unequal lengths {u.min_length}–{u.length}, zero-padded at the end to {u.length}, "
            "true lengths in ArrayDataset.lengths"
        )
    info = DatasetInfo(
        name=key,
        kind="signal",
        task="regression" if not u.classes else "classification",
        input_shape=(u.channels, u.length),
        num_classes=len(u.classes) or None,
        splits={"train": u.train, "test": u.test},
        source=f"sktime's bundled copy of the UCR/UEA archive file {u.problem}_{{TRAIN,TEST}}.ts (PyPI `sktime`)",
        licence="free for research use, cite the archive (UCR/UEA archive terms)",
        citation=u.citation,
        classes=u.classes,
        reference={f"{model} ({u.reference_source})": fig for model, fig in u.reference},
        notes=notes,
    )

    def loader(split: str, data_dir: str | None = None) -> ArrayDataset:
        return load_ucr(key, split, data_dir)

    loader.__name__ = key
    register_dataset(info)(loader)


for _key, _u in UCR_BUNDLED.items():
    _register_ucr(_key, _u)


# ---------------------------------------------------------------------------------------------
# forecasting


@dataclass(frozen=True)
class ForecastSpec:
    """How a series becomes windows: input L, horizon H, season m, the last ``n_test`` points for test."""

    name: str
    window: int  # L
    horizon: int  # H
    season: int  # m, for the seasonal naive forecast and MASE
    n_test: int  # points in the test period (the end of the series)
    n_points: int  # length of the whole series
    start: str  # first time stamp, e.g. "1949-01"
    freq: str  # "monthly" | "yearly"

    @property
    def n_train(self) -> int:
        return self.n_points - self.n_test

    @property
    def train_windows(self) -> int:
        return self.n_train - self.window - self.horizon + 1

    @property
    def test_windows(self) -> int:
        return self.n_test - self.horizon + 1


FORECAST: dict[str, ForecastSpec] = {
    # Box & Jenkins' classic split: fit 1949–1958, forecast 1959–1960
    "airline": ForecastSpec("airline", window=24, horizon=12, season=12, n_test=24, n_points=144,
                            start="1949-01", freq="monthly"),
    # ~11-year solar cycle; the last 60 years (1949–2008) are the test period
    "sunspots": ForecastSpec("sunspots", window=33, horizon=11, season=11, n_test=60, n_points=309,
                             start="1700", freq="yearly"),
    # monthly means of the weekly record; the last 5 years (1997–2001) are the test period
    "co2": ForecastSpec("co2", window=36, horizon=12, season=12, n_test=60, n_points=526,
                        start="1958-03", freq="monthly"),
}  # fmt: skip


def _read_csv_column(path: Path, column: str) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    first = next(iter(rows[0]))
    keys = [r[first] for r in rows]
    return keys, np.array([float(r[column]) if r[column] not in ("", "NA") else np.nan for r in rows])


@functools.cache
def _series(name: str) -> np.ndarray:
    if name == "airline":
        _, v = _read_csv_column(_sktime_data() / "Airline" / "Airline.csv", "Passengers")
        return v
    if name == "sunspots":
        root = package_dir("statsmodels", _STATSMODELS)
        _, v = _read_csv_column(root / "datasets" / "sunspots" / "sunspots.csv", "SUNACTIVITY")
        return v
    if name == "co2":
        root = package_dir("statsmodels", _STATSMODELS)
        dates, v = _read_csv_column(root / "datasets" / "co2" / "co2.csv", "co2")
        # weekly (YYYYMMDD) → monthly mean of the weeks that have a value; the few months with
        # none are filled by linear interpolation between their neighbours
        months = np.array([int(d[:4]) * 12 + int(d[4:6]) - 1 for d in dates])
        index = months - months[0]
        total, count = np.zeros(index[-1] + 1), np.zeros(index[-1] + 1)
        ok = ~np.isnan(v)
        np.add.at(total, index[ok], v[ok])
        np.add.at(count, index[ok], 1)
        monthly = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        gaps = np.isnan(monthly)
        monthly[gaps] = np.interp(np.flatnonzero(gaps), np.flatnonzero(~gaps), monthly[~gaps])
        return monthly
    raise UnknownDatasetError(name, list(FORECAST))


def series(name: str) -> np.ndarray:
    """The raw series (float64, in its own units) behind forecasting set ``name``, oldest first."""
    if name not in FORECAST:
        raise UnknownDatasetError(name, list(FORECAST))
    out = _series(name).copy()
    if len(out) != FORECAST[name].n_points:
        raise DataError(f"{name}: expected {FORECAST[name].n_points} points, read {len(out)}")
    return out


def forecast_spec(name: str) -> ForecastSpec:
    if name not in FORECAST:
        raise UnknownDatasetError(name, list(FORECAST))
    return FORECAST[name]


def forecast_scaler(name: str) -> tuple[float, float]:
    """(mean, std) of the train period: ``x_scaled = (x - mean) / std``; invert to report in units."""
    spec = forecast_spec(name)
    train = series(name)[: spec.n_train]
    return float(train.mean()), float(train.std())


def mase_scale(name: str) -> float:
    """MASE's denominator for set ``name``: mean |y_t − y_{t−m}| over the train period, in its units."""
    spec = forecast_spec(name)
    train = series(name)[: spec.n_train]
    return float(np.mean(np.abs(train[spec.season :] - train[: -spec.season])))


def window_starts(name: str, split: str) -> np.ndarray:
    """Index of each window's first input point: window i covers ``[s, s + L)`` → targets ``[s + L, s + L + H)``."""
    spec = forecast_spec(name)
    if split == "train":
        return np.arange(spec.train_windows)
    first = spec.n_train - spec.window  # the first test window's targets start at n_train
    return np.arange(first, first + spec.test_windows)


def _windows(name: str, split: str) -> ArrayDataset:
    spec = forecast_spec(name)
    mean, std = forecast_scaler(name)
    z = ((series(name) - mean) / std).astype(np.float32)
    starts = window_starts(name, split)
    idx = starts[:, None] + np.arange(spec.window + spec.horizon)  # (N, L + H)
    w = torch.from_numpy(z[idx])
    spans = torch.from_numpy(np.stack([starts, starts + spec.window + spec.horizon], 1)).long()  # points read
    return ArrayDataset(w[:, None, : spec.window].contiguous(), w[:, spec.window :].contiguous(), spans=spans)


@dataclass(frozen=True)
class ForecastInfo(DatasetInfo):
    """DatasetInfo of a windowed forecasting set: the model's output is the whole horizon."""

    horizon: int = 1
    season: int = 1

    @property
    def out_features(self) -> int:
        return self.horizon


_FORECAST_META = {
    "airline": dict(
        source="sktime's bundled Airline.csv (Box & Jenkins 'Series G', international airline passengers, "
        "thousands, monthly 1949–1960)",
        licence="public domain (published in Box & Jenkins 1976)",
        citation="Box & Jenkins, Time Series Analysis: Forecasting and Control, 1976",
    ),
    "sunspots": dict(
        source="statsmodels.datasets.sunspots (yearly mean sunspot number 1700–2008, NOAA NGDC)",
        licence="public domain (statsmodels: 'This data is public domain')",
        citation="NOAA National Geophysical Data Center, yearly sunspot numbers",
    ),
    "co2": dict(
        source="statsmodels.datasets.co2 (Mauna Loa weekly CO2 1958–2001, ppm), monthly means",
        licence="public domain (statsmodels: 'This is public domain')",
        citation="Keeling et al., Scripps CO2 program, Mauna Loa record",
    ),
}


def _register_forecast(spec: ForecastSpec) -> None:
    info = ForecastInfo(
        name=spec.name,
        kind="signal",
        task="forecasting",
        tasks=("forecasting", "regression"),  # the horizon as a regression target (MSE, R²) too
        input_shape=(1, spec.window),
        num_classes=None,
        splits={"train": spec.train_windows, "test": spec.test_windows},
        reference={"seasonal naive": "MASE 1.0 in-sample by definition (Hyndman & Koehler 2006)"},
        notes=(
            f"{spec.freq} series of {spec.n_points} points; windows L={spec.window} → H={spec.horizon}, "
            f"season {spec.season}; test = the last {spec.n_test} points (chronological, no overlap of "
            "targets); standardised with train-period mean/std (forecast_scaler)"
        ),
        horizon=spec.horizon,
        season=spec.season,
        **_FORECAST_META[spec.name],
    )

    def loader(split: str, data_dir: str | None = None) -> ArrayDataset:
        return _windows(spec.name, split)

    loader.__name__ = spec.name
    register_dataset(info)(loader)


for _spec in FORECAST.values():
    _register_forecast(_spec)


# ---------------------------------------------------------------------------------------------
# baseline and metric on raw values


def seasonal_naive(history: Sequence[float] | np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last observed season: ŷ_{T+h} = y_{T+h−m·⌈h/m⌉} for h = 1..H (Hyndman & Athanasopoulos §5.2)."""
    y = np.asarray(history, dtype=np.float64)
    if len(y) < season:
        raise ValueError(f"seasonal naive needs at least one season ({season}) of history, got {len(y)}")
    h = np.arange(1, horizon + 1)
    return y[len(y) - 1 + h - season * np.ceil(h / season).astype(int)]


def mase(y_true: np.ndarray, y_pred: np.ndarray, y_train: Sequence[float] | np.ndarray, season: int = 1) -> float:
    """Mean absolute scaled error: MAE / mean_t |y_t − y_{t−m}| over the training series (Hyndman & Koehler 2006)."""
    y_train = np.asarray(y_train, dtype=np.float64)
    scale = np.mean(np.abs(y_train[season:] - y_train[:-season]))
    if not math.isfinite(scale) or scale == 0:
        raise ValueError("MASE is undefined: the training series has no seasonal variation")
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred))) / scale)
