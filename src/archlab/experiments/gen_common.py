"""What the GAN and diffusion experiments share: samples drawn from trained runs (any generative
model of the contract: ``sample(n, generator)`` in the data's own units, or a VAE's prior samples),
their scores on the Gaussian mixtures, and the two rules that decide a verdict across seeds.

Rules (each returns +1, −1 or 0 so a verdict clause can come out either way or stay undecided):

- :func:`separated` — is mean(a) above or below mean(b) by more than ``z`` standard errors of the
  difference, SE = √(s_a²/n_a + s_b²/n_b) (s the seeds' sample standard deviation, n − 1)? With one
  seed per side the spread is unknown and only an exact tie is 0.
- :func:`variance_ratio` — is the seeds' variance of a larger or smaller than b's by more than the
  one-sided F-test at level α allows (F = s_a²/s_b² against F_{1−α}(n_a − 1, n_b − 1); Snedecor's F
  test of equal variances, e.g. NIST/SEMATECH e-Handbook §1.3.5.9)? With 3 seeds per side the
  critical ratio of variances is 19 (of standard deviations 4.36): three seeds decide only large
  differences in stability, and the verdicts say so.
- :func:`all_hold` — one clause from several such signs (all +1: +1; any −1: −1; else 0), and
  :func:`supported_by`, a verdict's ``supported`` from its clauses' signs (True, False or None).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.experiments.runs import RunSpec
from archlab.utils.progress import SamplingProgress

# the feature classifier of the image experiments' quick versions (the full one is the shipped recipe,
# trained once and cached): a few steps on a subset, enough to check the plumbing, not the claim
QUICK_CLASSIFIER: dict[str, Any] = {
    "budget.steps": 5,
    "schedule.warmup_steps": 0,
    "data.train_subset": 512,
    "data.test_subset": 64,
    "eval.every": 5,
    "checkpoint.every": 5,
}


def seed_list(seeds: list[int] | None, quick: bool, full: tuple[int, ...] = (0, 1, 2)) -> list[int]:
    """The ``seeds`` option without repeats, in order; when unset, [0] for the quick version and
    ``full`` for the full one."""
    return list(dict.fromkeys(seeds if seeds is not None else ([0] if quick else full)))


# -- trained models and their samples ------------------------------------------------------------
def trained_model(out_dir: Path, run: RunSpec, checkpoint: str = "last") -> nn.Module:
    """The model of a finished run (``checkpoint``: ``last``, ``best`` or ``step-N``), in eval mode on
    the CPU, with the task's state attached as :func:`~archlab.engine.load_run` attaches it: a GAN's
    averaged generator or a DDPM's averaged ε-network, when the run kept one, is what ``sample``
    draws with (the tasks attach them to the model)."""
    from archlab.engine import load_run

    model = load_run(out_dir / run.name, checkpoint=checkpoint).model
    return model.float().cpu().eval()


@torch.no_grad()
def draw(
    model: nn.Module,
    n: int,
    seed: int,
    batch_size: int = 1000,
    progress: Callable[[str], None] | None = None,
    label: str = "",
    **options: Any,
) -> torch.Tensor:
    """``n`` samples (n, *example shape) in the data's own units from a generator seeded ``seed``, in
    batches of ``batch_size``: ``model.sample(k, generator, **options)`` for a GAN or diffusion
    model, the decoded prior ``model.sample_prior(k, generator)`` for a VAE (the likelihood's mean,
    what VAE sample figures show). ``progress`` receives
    :class:`~archlab.utils.progress.SamplingProgress` lines naming ``label`` (or the model's class).
    Raises TypeError for a model with neither."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    report = SamplingProgress(progress, label or type(model).__name__, n) if progress else None
    out = []
    for start in range(0, n, batch_size):
        k = min(batch_size, n - start)
        if hasattr(model, "sample"):
            extra = report.options(model.sample, start, k) if report else {}
            out.append(model.sample(k, generator=g, **options, **extra).float().cpu())
        elif hasattr(model, "sample_prior"):
            out.append(model.sample_prior(k, generator=g).float().cpu())
        else:
            raise TypeError(f"{type(model).__name__} has neither sample() nor sample_prior()")
        if report:
            report.update(start + k)
    return torch.cat(out)


def timed_draw(model: nn.Module, n: int, seed: int, **options: Any) -> tuple[torch.Tensor, float]:
    """:func:`draw` (``options`` include its ``progress`` and ``label``) and its wall time in seconds per
    sample (this process's torch threads)."""
    t0 = time.perf_counter()
    x = draw(model, n, seed, **options)
    return x, (time.perf_counter() - t0) / n


def mixture_scores(samples: torch.Tensor, data: str, options: dict[str, Any] | None = None) -> dict[str, float]:
    """Mode coverage of 2-D/1-D ``samples`` on the mixture behind data set ``data``
    (:func:`~archlab.data.mixtures.mode_coverage`: modes covered, fraction of high-quality samples
    within 3σ, reverse KL in nats) and the Fréchet distance between the samples and the test split's
    points, on the coordinates themselves (units²: no features involved)."""
    from archlab.data import load_dataset
    from archlab.data.mixtures import mixture_of, mode_coverage

    mixture = mixture_of(data, options)
    if not torch.isfinite(samples).all():  # a diverged generator: nothing covered, nothing close
        k = len(mixture.means)
        return {
            "modes_covered": 0.0,
            "high_quality": 0.0,
            "reverse_kl": math.nan,
            "frechet_points": math.inf,
            "counts": [0] * k,
        }
    cov = mode_coverage(samples, mixture)
    test = load_dataset(data, "test", options=options or {}).x
    return {**cov.as_metrics(), "frechet_points": points_frechet(samples, test), "counts": list(cov.counts)}


def points_frechet(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``x`` (N, D) and ``y`` (M, D), on the
    raw coordinates (:mod:`archlab.tasks.frechet`'s equation; no classifier)."""
    from archlab.tasks.frechet import FeatureStatistics, frechet_distance_of

    d = x.shape[1]
    return frechet_distance_of(FeatureStatistics(d).update(x.double()), FeatureStatistics(d).update(y.double()))


# -- rules across seeds ---------------------------------------------------------------------------
def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value); (nan, nan) when a value is not finite (a
    reverse KL without any high-quality sample, a diverged run)."""
    if not all(math.isfinite(v) for v in values):
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def separated(a: list[float], b: list[float], z: float = 2.0) -> int:
    """+1 when mean(a) > mean(b) by more than ``z`` standard errors of the difference, −1 when below
    by as much, 0 otherwise (module docstring)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    se = math.sqrt(sa**2 / len(a) + sb**2 / len(b))
    diff = ma - mb
    if abs(diff) > z * se and diff != 0:
        return 1 if diff > 0 else -1
    return 0


def f_critical(dfn: int, dfd: int, alpha: float = 0.05) -> float:
    """F_{1−α}(dfn, dfd), the one-sided critical value of the variance-ratio test."""
    from scipy.stats import f

    return float(f.ppf(1 - alpha, dfn, dfd))


def variance_ratio(a: list[float], b: list[float], alpha: float = 0.05) -> tuple[int, float, float]:
    """(+1 / −1 / 0, s_a²/s_b², the critical ratio): +1 when the seeds of ``a`` vary more than those of
    ``b`` beyond the one-sided F-test at level ``alpha``, −1 when less by as much, 0 otherwise
    (also with fewer than 2 values on a side). A side with zero variance against one without is
    decided by the other side's test: ratio ∞ (or 0)."""
    if len(a) < 2 or len(b) < 2:
        return 0, math.nan, math.nan
    va, vb = statistics.variance(a), statistics.variance(b)
    up, down = f_critical(len(a) - 1, len(b) - 1, alpha), f_critical(len(b) - 1, len(a) - 1, alpha)
    if va == vb:
        return 0, 1.0, up
    ratio = va / vb if vb > 0 else math.inf
    if ratio > up:
        return 1, ratio, up
    if ratio < 1 / down:
        return -1, ratio, up
    return 0, ratio, up


def all_hold(signs: list[int]) -> int:
    """One clause from several signs (+1 holds, −1 fails, 0 undecided): +1 when every sign is +1, −1
    when any is −1, 0 otherwise (also for no signs)."""
    if signs and all(x == 1 for x in signs):
        return 1
    return -1 if -1 in signs else 0


def supported_by(signs: list[int]) -> bool | None:
    """A verdict's ``supported`` from its clauses' signs: True when all hold, False when any fails,
    None (mixed or undecided) otherwise."""
    return {1: True, -1: False, 0: None}[all_hold(signs)]


def pm(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    """``mean ± std`` (just the mean for one value); ``—`` when a value is not finite."""
    m, s = mean_std([v * scale for v in values])
    if not math.isfinite(m):
        return "—"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"
