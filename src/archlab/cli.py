"""The ``archlab`` command: the only place that wires every layer together.

Every user error becomes one line on stderr (``archlab: error: …``) and exit code 2;
a diverged run exits 3; Ctrl-C exits 130. No traceback reaches the user unless
``ARCHLAB_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# piped output (files, CI logs) gets wide tables instead of rich's 80-column wrapping
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
log = logging.getLogger("archlab")


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"archlab: error: {message} (see `{self.prog} --help`)\n")


# -- commands -----------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from archlab.registry.catalog import model_catalog
    from archlab.utils.units import human

    # the figures are each model's register_model(meta=...), read from a catalog cached under the
    # hash of the model sources: nothing is built, and torch is not imported when nothing changed
    table = Table(title="archlab models" + (f" · {args.family}" if args.family else ""))
    cols = ["name", "family", "params", *(["MACs", "input"] if args.macs else []), "tasks", "paper"]
    for col in cols:
        table.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for row in model_catalog(args.family):
        macs = [human(row["macs"]), "×".join(map(str, row["in_shape"]))] if args.macs else []
        params = f"{row['num_params']:,}"
        table.add_row(row["name"], row["family"], params, *macs, ", ".join(row["tasks"]), row["paper"])
    console.print(table)
    return 0


def _measure(name: str, **overrides: Any) -> dict[str, Any]:
    """Parameters and MACs of one model, built on the meta device (shapes only: exact and instant)."""
    import torch

    from archlab.registry import create_model
    from archlab.utils.counting import count_flops, count_params, example_inputs

    with torch.device("meta"):
        model = create_model(name, **overrides)
        shape = tuple(getattr(model, "input_shape", ()))
        flops = count_flops(model, example_inputs(model)) if shape or hasattr(model, "example_inputs") else None
    macs = None if flops is None else flops / 2
    return {"model": model, "num_params": count_params(model), "macs": macs, "shape": shape}


def cmd_info(args: argparse.Namespace) -> int:
    import dataclasses
    import inspect

    from archlab.config import parse_overrides
    from archlab.registry import get_model_entry
    from archlab.utils.units import human

    entry = get_model_entry(args.name)
    overrides = parse_overrides(args.overrides)
    if overrides or not {"num_params", "macs"} <= set(entry.meta):
        measured = _measure(args.name, **overrides)  # on the meta device: exact and instant
        config, n, macs, shape = measured["model"].config, measured["num_params"], measured["macs"], measured["shape"]
        how = "measured"
    else:  # the variant as registered: its published figures (the tests measure them on every model)
        config = entry.config(**entry.defaults)
        n, macs, shape = entry.meta["num_params"], entry.meta["macs"], tuple(entry.default("in_shape") or ())
        how = f"published by {entry.meta['source']}" if "source" in entry.meta else "this implementation"
        how += "; checked against the count in tests/test_registry_models.py"
    console.print(f"[bold]{entry.name}[/bold] — {entry.description}")
    notes = (inspect.getdoc(entry.builder) or "").split("\n", 1)[1:]
    if notes and notes[0].strip():
        console.print(notes[0].strip(), markup=False, highlight=False)
    console.print(f"family      {entry.family}")
    console.print(f"paper       {entry.paper}")
    console.print(f"tasks       {', '.join(entry.tasks)}")
    console.print(f"parameters  {n:,} ({human(n)}, {how})", markup=False, highlight=False)
    if macs is not None:
        exact = how == "measured" or isinstance(macs, int)  # published figures are rounded floats: 4.09e9
        console.print(
            f"MACs        {f'{round(macs):,} ({human(macs)})' if exact else human(macs)} multiply-accumulates per "
            f"example at input "
            f"(1, {', '.join(map(str, shape))}); {f'{round(2 * macs):,}' if exact else human(2 * macs)} FLOPs "
            "(torch.utils.flop_counter: convolutions and matrix products)",
            markup=False,
            highlight=False,
        )
    console.print(f"source      {entry.module}")
    cfg = Table(title=f"{type(config).__name__} (defaults of this variant)")
    cfg.add_column("field")
    cfg.add_column("value")
    for f in dataclasses.fields(config):
        cfg.add_row(f.name, repr(getattr(config, f.name)))
    console.print(cfg)
    eq = entry.equations()
    if eq:
        console.print("[bold]Equations[/bold]")
        console.print(eq, markup=False, highlight=False)
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    import yaml

    from archlab.config import shipped_recipes

    table = Table(title="shipped recipes (archlab train NAME)")
    for col in ("name", "model", "data", "budget", "description"):
        table.add_column(col)
    for name, path in shipped_recipes().items():
        raw = yaml.safe_load(path.read_text())
        budget = ", ".join(f"{k} {v}" for k, v in (raw.get("budget") or {}).items())
        if name.endswith("/default"):
            model = "(any)"
        else:
            model = raw.get("model", {}).get("name", "?")
        table.add_row(name, model, raw.get("data", {}).get("name", "?"), budget, raw.get("description", ""))
    console.print(table)
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    test = ", ".join(f"{k} {v:.4f}" for k, v in s["test"].items())
    console.print(
        f"[bold green]done[/bold green] {s['model']} on {s['dataset']}: test {test} · {s['steps']} steps "
        f"in {s['wall_time_s']:.1f}s ({s['samples_per_s']} samples/s) · {s['params']:,} params"
    )
    console.print(f"run dir: {s['run_dir']}")


def cmd_train(args: argparse.Namespace) -> int:
    from archlab.config import load_recipe, parse_overrides
    from archlab.engine import Trainer
    from archlab.utils.errors import preview

    overrides = parse_overrides(args.overrides)
    if args.data_dir:
        overrides["data.data_dir"] = args.data_dir
    if args.resume:
        given = [x for x in [args.recipe, *args.overrides] if x and "=" in x]
        if given:
            raise _usage(
                f"--resume continues a run with the recipe it was started with; drop {preview(' '.join(given))} "
                "(or start a new run with the changed recipe)"
            )
        recipe = load_recipe(args.recipe) if args.recipe else None
        trainer = Trainer.resume(args.resume, recipe=recipe)
    else:
        if not args.recipe:
            raise _usage("train needs a RECIPE (a shipped name from `archlab recipes` or a YAML file)")
        trainer = Trainer(load_recipe(args.recipe, overrides), runs_dir=args.runs_dir)
    if not trainer.dist.is_main:  # the other ranks of a torchrun job train silently
        trainer.fit()
        return 0
    b = trainer.recipe.budget
    limits = [
        f"{trainer.total_steps} steps" if trainer.total_steps else None,
        f"{b.seconds:g} s" if b.seconds else None,
    ]
    err_console.print(
        f"run dir: {trainer.run_dir} · budget: {' or '.join(x for x in limits if x)} "
        f"({trainer.loader.steps_per_epoch} steps per epoch)",
        markup=False,
        highlight=False,
    )
    _print_summary(trainer.fit())
    return 0


def _check_sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """--ddim-steps / --sampler / --eta checked alone (before any run is loaded) → sample() keywords."""
    if args.ddim_steps is not None and not 1 <= args.ddim_steps <= _MAX_DDIM_STEPS:
        raise _usage(f"--ddim-steps must be in [1, {_MAX_DDIM_STEPS:,}] denoising steps, got {args.ddim_steps}")
    if args.ddim_steps is not None and args.sampler == "ddpm":
        raise _usage("--ddim-steps: the ddpm sampler takes every step of the schedule; use --sampler ddim (or drop it)")
    eta = 0.0 if args.eta is None else args.eta
    if not (math.isfinite(eta) and 0.0 <= eta <= 1.0):
        raise _usage(f"--eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM's σ_t), got {eta}")
    if eta and args.sampler != "ddim" and args.ddim_steps is None:
        raise _usage("--eta applies to the ddim sampler only; add --sampler ddim or --ddim-steps N")
    sampler = args.sampler or ("ddim" if args.ddim_steps is not None else None)
    return {} if sampler is None else {"sampler": sampler, "steps": args.ddim_steps, "eta": eta}


def cmd_eval(args: argparse.Namespace) -> int:
    from archlab.engine import evaluate_run

    sampler = _check_sampler_options(args)
    diffusion_flags = _flags(args, _SAMPLE_DIFFUSION)
    if args.samples is None and (args.inception_weights or diffusion_flags):
        given = (["--inception-weights"] if args.inception_weights else []) + diffusion_flags
        raise _usage(f"{', '.join(given)}: these options score samples; add --samples N (e.g. --samples 1000)")
    if args.samples is not None and not _MIN_EVAL_SAMPLES <= args.samples <= _MAX_EVAL_SAMPLES:
        raise _usage(f"--samples must be in [{_MIN_EVAL_SAMPLES}, {_MAX_EVAL_SAMPLES:,}], got {args.samples}")
    if not 0 <= args.seed < 2**63:
        raise _usage(f"--seed must be in [0, 2**63 − 1], got {args.seed}")
    scoring = _sample_scoring(args, sampler) if args.samples is not None else None  # checked before evaluating
    res = evaluate_run(args.run_dir, split=args.split, checkpoint=args.checkpoint, precision=args.precision)
    metrics = {k: v for k, v in res.items() if k not in ("run_dir", "checkpoint", "step", "split", "precision")}
    if scoring is not None:
        res["samples"] = scoring()
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        console.print(
            f"{res['split']} ({res['checkpoint']}, step {res['step']}, {res['precision']}): {shown}",
            markup=False,
            highlight=False,
            soft_wrap=True,  # one line, also when piped (| tail -1)
        )
        if scoring is not None:
            s = res["samples"]
            shown = ", ".join(f"{k} {v:.4g}" for k, v in s["metrics"].items())
            console.print(f"samples ({s['count']:,} vs {s['real']:,} test examples; {s['features']}): {shown}",
                          markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    return 0


_MIN_EVAL_SAMPLES, _MAX_EVAL_SAMPLES = 10, 50_000


def _sample_scoring(args: argparse.Namespace, sampler: dict[str, Any]) -> Any:
    """Checks that the run is a GAN or diffusion run and that its data can be scored (before the run
    is evaluated); returns the function that draws and scores ``--samples`` samples."""
    from archlab.engine import load_run
    from archlab.report.generative import data_kind, is_diffusion, is_gan

    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    if not (is_gan(run.model) or is_diffusion(run.model)):
        raise _usage(
            f"--samples: {args.run_dir} is a {run.task.name} run of {run.recipe.model.name}; sample metrics score a "
            "GAN or diffusion run"
        )
    if sampler and not is_diffusion(run.model):
        raise _usage(f"{', '.join(_flags(args, _SAMPLE_DIFFUSION))}: {args.run_dir} is a GAN run; these options "
                     "choose a diffusion model's sampler")  # fmt: skip
    real, _ = _test_examples(run)
    image = data_kind(real) == "image"
    if args.inception_weights and not image:
        raise _usage(f"--inception-weights: {args.run_dir} generates {tuple(real.shape[1:])} data, not images")
    if image and tuple(real.shape[1:]) != (1, 28, 28):
        raise _usage(
            f"--samples: the feature metrics use the in-project Fashion-MNIST classifier, which takes 1×28×28 "
            f"images, not {'×'.join(map(str, real.shape[1:]))}"
        )
    inception = None
    if args.inception_weights:
        from archlab.tasks.inception import InceptionFeatures

        inception = InceptionFeatures(args.inception_weights, device=run.device)
    mixture = None
    if not image:
        from archlab.data.mixtures import mixture_of
        from archlab.utils.errors import ConfigError

        try:
            mixture = mixture_of(run.recipe.data.name, run.recipe.data.options)
        except ConfigError:  # not a Gaussian-mixture set: no mode coverage
            mixture = None

    def score() -> dict[str, Any]:
        from archlab.experiments.sample_quality import FEATURE_NOTE, draw_samples, score_samples

        classifier = None
        if image:
            from archlab.experiments.feature_classifier import feature_classifier

            classifier = feature_classifier(progress=_progress)
        samples = draw_samples(run.model, args.samples, seed=args.seed, progress=_progress, **sampler)
        n_real = min(len(real), args.samples)
        try:
            metrics = score_samples(samples, real[:n_real], classifier=classifier, inception=inception, mixture=mixture)
        except ValueError as e:
            raise _usage(f"--samples: {e}") from None
        features = FEATURE_NOTE if image else "the coordinates themselves"
        if inception is not None:
            features += "; *_inception: Inception-v3 pool features (torch-fidelity, your weights)"
        return {"count": len(samples), "real": n_real, "seed": args.seed, "features": features, **sampler,
                "metrics": metrics}  # fmt: skip

    return score


_SAMPLE_LM = {"prompt": "\n", "tokens": 500, "temperature": 1.0, "top_k": None, "top_p": None}  # text options
_SAMPLE_AE = {"n": 32, "steps": 10, "pairs": 4, "out": None}  # figure options (autoencoder, GAN, diffusion runs)
_SAMPLE_DIFFUSION = {"ddim_steps": None, "sampler": None, "eta": 0.0}  # diffusion runs only
_GEN_POINTS = 1000  # default --n for 2-D / 1-D data (a scatter or histogram), images keep 32
_SAMPLERS = ("ddpm", "ddim")  # report.generative.SAMPLERS (not imported: `--help` imports no torch)


def _flags(args: argparse.Namespace, defaults: dict[str, Any]) -> list[str]:
    """The options of ``defaults`` the user gave (the parser's default is None), as --flags."""
    return ["--" + k.replace("_", "-") for k in defaults if getattr(args, k) is not None]


def cmd_sample(args: argparse.Namespace) -> int:
    from archlab.engine import load_run

    given_lm, given_ae, given_diff = _flags(args, _SAMPLE_LM), _flags(args, _SAMPLE_AE), _flags(args, _SAMPLE_DIFFUSION)
    n_given = args.n is not None
    for k, v in {**_SAMPLE_LM, **_SAMPLE_AE, **_SAMPLE_DIFFUSION}.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if not 1 <= args.tokens <= _MAX_SAMPLE_TOKENS:
        raise _usage(f"--tokens must be in [1, {_MAX_SAMPLE_TOKENS:,}], got {args.tokens}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise _usage(f"--temperature must be a finite number ≥ 0 (0 = greedy), got {args.temperature}")
    if args.top_p is not None and not 0.0 < args.top_p <= 1.0:
        raise _usage(f"--top-p must lie in (0, 1] (0.9: the fewest tokens holding 90% of the mass), got {args.top_p}")
    if not 0 <= args.seed < 2**63:
        raise _usage(f"--seed must be in [0, 2**63 − 1], got {args.seed}")
    if not 1 <= args.n <= _MAX_GEN_POINTS:
        raise _usage(
            f"--n must be in [1, {_MAX_AE_EXAMPLES:,}] examples (images; [1, {_MAX_GEN_POINTS:,}] samples of 2-D or "
            f"1-D data), got {args.n}"
        )
    if not 2 <= args.steps <= _MAX_AE_STEPS:
        raise _usage(f"--steps must be in [2, {_MAX_AE_STEPS}] points per interpolation path, got {args.steps}")
    if not 1 <= args.pairs <= _MAX_AE_PAIRS:
        raise _usage(f"--pairs must be in [1, {_MAX_AE_PAIRS}] interpolation strips, got {args.pairs}")
    sampler = _check_sampler_options(args)
    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    from archlab.report.generative import is_diffusion, is_gan
    from archlab.report.latent import is_autoencoder

    kind = (
        "an autoencoder" if is_autoencoder(run.model) else "a GAN" if is_gan(run.model)
        else "a diffusion" if is_diffusion(run.model)
        else "a translation" if callable(getattr(run.model, "translate", None)) else None
    )  # fmt: skip
    if kind and given_lm:  # a --prompt to a figure-drawing run was ignored without a word
        raise _usage(
            f"{', '.join(given_lm)}: {args.run_dir} is {kind} run ({run.recipe.model.name}), which draws "
            f"figures, not text; its options are {_FIGURE_OPTIONS[kind]}"
        )
    if given_diff and kind != "a diffusion":
        what = f"{kind} run" if kind else f"a {run.task.name} run"
        raise _usage(
            f"{', '.join(given_diff)}: {args.run_dir} is {what} ({run.recipe.model.name}); these options choose a "
            "diffusion model's sampler"
        )
    if kind == "an autoencoder":
        if args.n > _MAX_AE_EXAMPLES:
            raise _usage(f"--n must be in [1, {_MAX_AE_EXAMPLES:,}] examples, got {args.n}")
        return _sample_autoencoder(run, args)
    if kind is not None:
        no_paths = kind in ("a diffusion", "a translation")
        ignored = [f for f in given_ae if f in ("--steps", "--pairs")] if no_paths else []
        if ignored:
            raise _usage(
                f"{', '.join(ignored)}: {args.run_dir} is {kind} run, which has no latent paths; its options "
                f"are {_FIGURE_OPTIONS[kind]}"
            )
        if kind == "a translation":
            return _sample_translation(run, args, n_given)
        return _sample_generative(run, args, n_given, sampler)
    if not hasattr(run.task, "sample"):
        raise _usage(
            f"{args.run_dir} is a {run.task.name} run of {run.recipe.model.name}; `archlab sample` continues text "
            "from a language-model run or draws figures of an autoencoder, GAN or diffusion run"
        )
    if given_ae:
        raise _usage(
            f"{', '.join(given_ae)}: {args.run_dir} is a language-model run ({run.recipe.model.name}), which "
            "continues text; its options are --prompt, --tokens, --temperature, --top-k, --top-p, --seed"
        )
    text = run.task.sample(
        run.model,
        args.prompt,
        args.tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    print(text)
    return 0


_MAX_AE_EXAMPLES = 1024  # images in one grid
_MAX_GEN_POINTS = 100_000  # 2-D / 1-D samples in one scatter or histogram
_MAX_DDIM_STEPS = 100_000
_MAX_AE_STEPS = 64
_MAX_AE_PAIRS = 32


def _test_examples(run: Any, limit: int | None = None) -> tuple[Any, Any]:
    """The run's test inputs and labels (its recipe's data set, options and test subset)."""
    from archlab.data import load_dataset

    data = run.recipe.data
    ds = load_dataset(data.name, "test", data_dir=data.data_dir, options=data.options)
    n = min([len(ds), *(v for v in (data.test_subset, limit) if v is not None)])
    y = ds.y[:n] if getattr(ds, "y", None) is not None else None
    return ds.x[:n], y


def _sample_autoencoder(run: Any, args: argparse.Namespace) -> int:
    from archlab.report.latent import write_sample_figures

    x, y = _test_examples(run)
    out = Path(args.out) if args.out else Path(args.run_dir) / "figures"
    written = write_sample_figures(
        run.model, x, y, out, n=args.n, steps=args.steps, pairs=args.pairs, seed=args.seed, name=run.recipe.name
    )
    for path, _ in written:
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    return 0


_FIGURE_OPTIONS = {
    "an autoencoder": "--n, --steps, --pairs, --out, --seed",
    "a GAN": "--n, --steps, --pairs, --out, --seed",
    "a diffusion": "--n, --ddim-steps, --sampler, --eta, --out, --seed",
    "a translation": "--n, --out",
}
_TRANSLATION_COLUMNS = 10  # default --n of a translation run: test images per row


def _sample_translation(run: Any, args: argparse.Namespace, n_given: bool) -> int:
    from archlab.report.latent import record_figures
    from archlab.report.translation import ROW_LABELS, write_translation_figure

    n = args.n if n_given else _TRANSLATION_COLUMNS
    out = Path(args.out) if args.out else Path(args.run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    path = write_translation_figure(args.run_dir, out / "gen-translation.png", n=n, checkpoint=args.checkpoint)
    cap = f"{run.recipe.name}: the first {n} test images, one row each of " + ", ".join(ROW_LABELS)
    record_figures(out, [(path, cap)])
    console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    return 0


def _sample_generative(run: Any, args: argparse.Namespace, n_given: bool, sampler: dict[str, Any]) -> int:
    from archlab.report.generative import data_kind, write_generative_figures

    x, _ = _test_examples(run)
    image = data_kind(x) == "image"
    n = args.n if n_given else (args.n if image else _GEN_POINTS)
    if image and n > _MAX_AE_EXAMPLES:
        raise _usage(f"--n must be in [1, {_MAX_AE_EXAMPLES:,}] images, got {n}")
    out = Path(args.out) if args.out else Path(args.run_dir) / "figures"
    try:
        written = write_generative_figures(
            run.model, x, out, n=n, steps=args.steps, pairs=args.pairs, seed=args.seed, name=run.recipe.name,
            sampler=sampler.get("sampler"), sample_steps=sampler.get("steps"), eta=sampler.get("eta", 0.0),
            progress=_progress,
        )  # fmt: skip
    except ValueError as e:  # the model's own check of a sampling option (steps beyond its schedule …)
        raise _usage(str(e)) from None
    for p, _ in written:
        console.print(f"wrote {p}", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from archlab.engine import load_run
    from archlab.report.latent import is_autoencoder, write_embedding

    if args.limit is not None and args.limit < 2:
        raise _usage(f"--limit must be at least 2 test examples, got {args.limit}")
    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    if not is_autoencoder(run.model):
        raise _usage(
            f"{args.run_dir} is a {run.task.name} run of {run.recipe.model.name}; `archlab embed` needs an "
            "autoencoder run (a model with encode/decode, e.g. ae_mlp or vae_conv)"
        )
    x, y = _test_examples(run, args.limit)
    out = Path(args.out) if args.out else Path(args.run_dir) / "latents"
    res = write_embedding(
        run.model,
        x,
        y,
        out,
        Path(args.run_dir) / "figures",
        method=args.projection,
        classes=getattr(run.info, "classes", ()) or (),
        seed=args.seed,
        name=run.recipe.name,
    )
    console.print(
        f"{res['count']:,} codes of {res['latent_dim']} dimensions: {res['latents']}; scatter ({res['projection']}): "
        f"{res['figure']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0


_SHADES = " ░▒▓█"
_MAX_SAMPLE_TOKENS = 1_000_000
_MAX_SEEDS = 1000
_MAX_BEAM = 1000  # a beam holds (beam × vocabulary) scores per step


def cmd_attention(args: argparse.Namespace) -> int:
    from archlab.engine import load_run
    from archlab.report.figures import attention_heatmap

    if args.beam is not None and args.beam > _MAX_BEAM:
        raise _usage(f"--beam: at most {_MAX_BEAM} hypotheses, got {args.beam}")
    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    if not hasattr(run.task, "translate"):
        raise _usage(f"{args.run_dir} is a {run.task.name} run; `archlab attention` needs a seq2seq run")
    if args.beam is not None:
        run.task.options["beam_size"] = args.beam
    src, out, weights = run.task.translate(run.model, args.text)
    shown = run.task.tgt_vocab.detokenize([t for t in out if t != "<eos>"])
    console.print(f"{args.text} → {shown}", markup=False, highlight=False)
    if weights is None:
        raise _usage(f"{args.run_dir}: model {run.recipe.model.name} has no attention (the context-vector baseline)")
    width = max(len(t) for t in out)
    console.print(" " * (width + 1) + " ".join(t[:3].ljust(3) for t in src), markup=False, highlight=False)
    for token, row in zip(out, weights.tolist(), strict=True):
        cells = " ".join(_SHADES[min(4, int(w * 5))] * 3 for w in row)
        console.print(f"{token.rjust(width)} {cells}", markup=False, highlight=False)
    path = Path(args.out) if args.out else Path(args.run_dir) / "figures" / "attention.png"
    attention_heatmap(src, out, weights.numpy(), path, title=f"{run.recipe.model.name}: {args.text} → {shown}")
    console.print(f"attention map: {path}", markup=False, highlight=False)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from archlab.data import dataset_info, dataset_options, list_datasets

    if args.data_cmd == "info":
        info = dataset_info(args.name)
        for field in (
            "name",
            "kind",
            "task",
            "input_shape",
            "num_classes",
            "splits",
            "source",
            "licence",
            "citation",
            "notes",
        ):
            value = getattr(info, field)
            if value not in ("", None, ()):
                console.print(f"{field:<12} {value}", markup=False, highlight=False)
        if info.classes:
            console.print(f"{'classes':<12} {', '.join(info.classes)}", markup=False)
        options = dataset_options(args.name)
        if options:
            shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
            console.print(f"{'options':<12} {shown} (set with data.options.KEY=VALUE)", markup=False, highlight=False)
        if info.reference:
            console.print("published results:")
            for k, v in info.reference.items():
                console.print(f"  {k}: {v}", markup=False)
        return 0
    table = Table(title="archlab data sets")
    for col in ("name", "kind", "task", "input", "classes", "train/test", "source"):
        table.add_column(col)
    for name in list_datasets():
        i = dataset_info(name)
        split = "/".join(str(v) for v in i.splits.values())
        table.add_row(name, i.kind, i.task, str(i.input_shape), str(i.num_classes or "—"), split, i.source)
    console.print(table)
    return 0


def _compare_table(rec: dict[str, Any]) -> Table:
    metric = rec["metric"]
    pct = metric == "accuracy"
    budget = ", ".join(f"{v} {k}" for k, v in rec["budget"].items() if v is not None)
    seeds = ", ".join(map(str, rec["seeds"]))
    table = Table(title=f"{rec['title']} · {budget} · batch {rec.get('batch_size', '?')} · seeds {seeds}")
    for col in ("model", "params", f"test {metric}" + (" %" if pct else ""), "published", "train s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rec["models"]:
        st = r["test"][metric]
        scale = 100 if pct else 1
        table.add_row(
            r["label"],
            f"{r['params']:,}",
            f"{scale * st['mean']:.1f} ± {scale * st['std']:.1f}" if pct else f"{st['mean']:.4f} ± {st['std']:.4f}",
            r["published"] or "—",
            f"{r['wall_time_s']['mean']:.1f}",
        )
    return table


def _progress(line: str) -> None:
    """Progress of a compare or an experiment: plain lines (they read the same in a log file)."""
    err_console.print(f"  {line}", markup=False, highlight=False)


def cmd_compare(args: argparse.Namespace) -> int:
    from archlab.config import parse_overrides
    from archlab.experiments import INDUCTIVE_BIAS_MODELS, LABELS, run_compare, run_experiment

    # `archlab compare mlp gru optim.lr=3e-3`: positional key=value items are overrides too
    args.overrides += [m for m in args.models if "=" in m]
    args.models = [m for m in args.models if "=" not in m]
    overrides = parse_overrides(args.overrides)
    if args.data_dir:
        overrides["data.data_dir"] = args.data_dir
    if args.budget:
        for item in args.budget.split(","):
            key, _, value = item.partition("=")
            overrides[f"budget.{key.strip()}"] = parse_overrides([f"x={value}"])["x"]
    if args.seeds and args.seeds > _MAX_SEEDS:
        raise _usage(f"--seeds: at most {_MAX_SEEDS} seeds, got {args.seeds}")
    seeds = list(range(args.seeds)) if args.seeds else None
    if not args.models:
        # the main job: the MNIST-1D inductive-bias comparison
        options: dict[str, Any] = {"data": args.data or "mnist1d", "overrides": overrides}
        if seeds:
            options["seeds"] = seeds
        # the banner names the models the experiment trains, and is printed once every run is checked
        labels = ", ".join(LABELS.get(m, m) for m in INDUCTIVE_BIAS_MODELS)
        banner = f"inductive biases on {options['data']} ({labels}; same data, same budget)"

        def started(out_dir: Path) -> None:
            err_console.print(f"[bold]archlab compare[/bold]: {banner}")
            err_console.print(f"run dir: {out_dir}")

        out, result = run_experiment(
            "inductive-bias",
            runs_dir=args.runs_dir,
            quick=args.quick,
            options=options,
            jobs=args.jobs,
            on_start=started,
            progress=_progress,
        )
        from archlab.utils.io import read_json

        rec = read_json(out / "compare.json")
        console.print(_compare_table(rec))
        if rec.get("augment"):
            console.print(
                f"set-up: every model trained with data.augment={rec['augment']} "
                "(the published numbers used none; `--set 'data.augment=[]'` reproduces that set-up)"
            )
        console.print(result.verdict)
        console.print(f"report: {out / 'report.html'}")
        return 0
    if not args.data:
        raise _usage("compare MODEL... needs --data (e.g. --data mnist1d); `archlab data list` shows them")
    rec = run_compare(
        args.models,
        args.data,
        seeds=seeds or [0, 1, 2],
        overrides=overrides,
        runs_dir=args.runs_dir,
        jobs=args.jobs,
        on_start=lambda p: err_console.print(f"run dir: {p}"),
        progress=_progress,
    )
    console.print(_compare_table(rec))
    console.print(f"report: {Path(rec['dir']) / 'report.html'}")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from archlab.config import parse_overrides
    from archlab.experiments import EXPERIMENTS, list_experiments, run_experiment

    if args.name is None or args.name == "list":
        table = Table(title="archlab experiments (archlab experiment NAME [--quick] [--set KEY=VALUE])")
        table.add_column("name")
        table.add_column("claim")
        table.add_column("options (--set)")
        for n in list_experiments():
            cls = EXPERIMENTS.get(n)
            table.add_row(n, cls.claim, ", ".join(cls.option_names()))
        console.print(table)
        return 0
    out, result = run_experiment(
        args.name,
        runs_dir=args.runs_dir,
        quick=args.quick,
        options=parse_overrides(args.options),
        jobs=args.jobs,
        on_start=lambda p: err_console.print(f"run dir: {p}"),
        progress=_progress,
        reuse=args.reuse,
    )
    table = Table(title=result.title)
    for c in result.columns:
        table.add_column(str(c))
    for row in result.rows:
        table.add_row(*[str(v) for v in row])
    console.print(table)
    console.print(f"[bold]verdict[/bold]: {result.verdict}")
    console.print(f"report: {out / 'report.html'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from archlab.report import build_report

    path = build_report(args.runs_dir)
    console.print(f"report: {path}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _UsageError(Exception):
    pass


def _usage(msg: str) -> _UsageError:
    return _UsageError(msg)


# -- parser -------------------------------------------------------------------------------------
def _add_set(parser: argparse.ArgumentParser, dest: str, text: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option, collected into ``dest`` (a list of strings)."""
    parser.add_argument("--set", dest=dest, action="append", default=[], metavar="KEY=VALUE", help=text)


def _add_sampler_options(parser: argparse.ArgumentParser) -> None:
    """A diffusion run's sampler: --ddim-steps, --sampler, --eta (archlab sample and eval)."""
    parser.add_argument(
        "--ddim-steps",
        type=int,
        default=None,
        help="diffusion: sample with DDIM over this many steps (Song et al. 2021) instead of every DDPM step",
    )
    parser.add_argument("--sampler", choices=_SAMPLERS, default=None, help="diffusion: ddpm (default) or ddim")
    parser.add_argument(
        "--eta", type=float, default=None, help="diffusion, DDIM: η in [0, 1] (0 = deterministic; default)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="archlab", description="Classic deep-learning architectures: create, train, compare.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    s = sub.add_parser("list", help="every registered model with params and paper")
    s.add_argument("--family", help="only this family (feedforward, cnn, rnn, ...)")
    s.add_argument("--macs", action="store_true", help="also multiply-accumulates per example at the canonical input")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("info", help="config, parameter count, MACs, paper and equations of a model")
    s.add_argument("name")
    _add_set(s, "overrides", "a model option, e.g. --set width_mult=0.5 --set small_input=true")
    s.set_defaults(fn=cmd_info)

    s = sub.add_parser("recipes", help="the recipes shipped inside the package")
    s.set_defaults(fn=cmd_recipes)

    s = sub.add_parser("train", help="train a recipe: archlab train RECIPE [key=value ...]")
    s.add_argument("recipe", nargs="?", help="shipped recipe name (see `archlab recipes`) or a YAML file")
    s.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=3e-4 budget.steps=500")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its newest good checkpoint")
    s.add_argument("--runs-dir", default="runs", help="where new run directories go (default: runs)")
    s.add_argument("--data-dir", help="folder holding the data set's files (same as data.data_dir=DIR)")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="evaluate a run's checkpoint on a split")
    s.add_argument("run_dir")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument(
        "--checkpoint",
        default="auto",
        help="auto (default: the weights summary.json reports — best if the recipe restores it, else "
        "last), best, last, or step-N",
    )
    s.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default=None,
        help="evaluate in this precision instead of the run's own (default: the run's, which reproduces "
        "summary.json exactly)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--samples",
        type=int,
        default=None,
        help="GAN/diffusion runs: also draw N samples and score them against N test examples (feature-space FID, "
        "KID, precision/recall/density/coverage, diversity, sharpness; not Inception-FID)",
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    s.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="with --samples: also Inception-FID/KID through torch-fidelity with these weights "
        "(weights-inception-2015-12-05-6726825d.pth; needs the optional extra archlab[inception])",
    )
    _add_sampler_options(s)
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser(
        "sample",
        help="continue a prompt with a trained language model, or draw the figures of an autoencoder (prior "
        "samples, reconstructions, interpolations, traversals), GAN (samples, latent interpolations), diffusion "
        "(samples, the denoising chain) or translation run",
    )
    s.add_argument("run_dir")
    s.add_argument("--prompt", default=None, help="text to start from (default: a new line)")
    s.add_argument("--tokens", type=int, default=None, help="tokens to sample (default 500)")
    s.add_argument("--temperature", type=float, default=None, help="softmax temperature; 0 = greedy (default 1)")
    s.add_argument("--top-k", type=_positive_int, default=None, help="sample among the k most likely tokens only")
    s.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="nucleus sampling: among the fewest most likely tokens holding mass ≥ p, 0 < p ≤ 1 (Holtzman et al. 2020)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--checkpoint", default="auto", help="auto | best | last | step-N (default auto)")
    s.add_argument(
        "--n", type=int, default=None, help="figures: examples per grid (default 32; 1,000 points for 2-D data)"
    )
    s.add_argument("--steps", type=int, default=None, help="autoencoder, GAN: points per latent path (default 10)")
    s.add_argument("--pairs", type=int, default=None, help="autoencoder, GAN: interpolation strips (default 4)")
    s.add_argument("--out", default=None, help="figures: folder for the PNGs (default RUN_DIR/figures)")
    _add_sampler_options(s)
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("embed", help="an autoencoder run's latent codes of the test set (.npy) and a 2-D scatter")
    s.add_argument("run_dir")
    s.add_argument(
        "--projection",
        choices=("auto", "pca", "umap"),
        default="auto",
        help="latent_dim > 2: PCA (auto, pca) or UMAP (umap-learn); latent_dim = 2 is drawn as is",
    )
    s.add_argument("--limit", type=int, default=None, help="only the first N test examples")
    s.add_argument("--seed", type=int, default=0, help="seed of the projection (UMAP)")
    s.add_argument("--out", default=None, help="folder for latents.npy / labels.npy (default RUN_DIR/latents)")
    s.add_argument("--checkpoint", default="auto", help="auto | best | last | step-N (default auto)")
    s.set_defaults(fn=cmd_embed)

    s = sub.add_parser("attention", help="translate a text with a seq2seq run and save its attention heat map")
    s.add_argument("run_dir")
    s.add_argument("text", help='the source text, e.g. "quatre cent vingt-trois"')
    s.add_argument("--beam", type=_positive_int, default=None, help="beam size (default: the recipe's, 1 = greedy)")
    s.add_argument("--out", help="PNG path (default: RUN_DIR/figures/attention.png)")
    s.add_argument("--checkpoint", default="auto", help="auto | best | last | step-N (default auto)")
    s.set_defaults(fn=cmd_attention)

    s = sub.add_parser("data", help="data sets: archlab data list | archlab data info NAME")
    dsub = s.add_subparsers(dest="data_cmd", required=True, parser_class=_ArgumentParser)
    dsub.add_parser("list", help="every registered data set")
    d = dsub.add_parser("info", help="metadata and published results of a data set")
    d.add_argument("name")
    s.set_defaults(fn=cmd_data)

    s = sub.add_parser("compare", help="train models on the same data and budget; no arguments = the main job")
    s.add_argument("models", nargs="*", help="model names (default: the MNIST-1D inductive-bias set)")
    s.add_argument("--data", help="data set (needed with MODEL...; the main job, no models given, uses mnist1d)")
    s.add_argument("--budget", help="e.g. steps=2000 or epochs=5 or seconds=60 (comma-separated)")
    s.add_argument("--seeds", type=_positive_int, help="number of seeds (default 3)")
    s.add_argument("--quick", action="store_true", help="a short smoke run (300 steps, 1 seed)")
    _add_set(s, "overrides", "recipe override applied to every model, e.g. --set optim.lr=3e-3")
    s.add_argument("--runs-dir", default="runs")
    s.add_argument("--data-dir", help="folder holding the data set's files (same as --set data.data_dir=DIR)")
    s.add_argument(
        "--jobs", type=_positive_int, help="training processes side by side (default: ARCHLAB_JOBS or the cores)"
    )
    s.set_defaults(fn=cmd_compare)

    s = sub.add_parser("experiment", help="run a claim from the literature as an experiment")
    s.add_argument("name", nargs="?", help="experiment name; omit to list them")
    s.add_argument("--quick", action="store_true", help="a short version for a smoke test")
    _add_set(s, "options", "an experiment option, e.g. --set steps=3000 --set 'seeds=[0, 1, 2]'")
    s.add_argument("--jobs", type=_positive_int, help="parallel training processes (default: ARCHLAB_JOBS or cores)")
    s.add_argument("--runs-dir", default="runs")
    s.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="DIR",
        help="finished runs to reuse instead of training again: a run dir, an experiment's dir or a runs dir "
        "(repeatable); only runs whose recipe is exactly the one needed (name aside) and whose checkpoints are "
        "all there and intact are reused (the archlab version that trained them is not compared)",
    )
    s.set_defaults(fn=cmd_experiment)

    s = sub.add_parser("report", help="one offline HTML page with every run, compare and experiment")
    s.add_argument("runs_dir", nargs="?", default="runs")
    s.set_defaults(fn=cmd_report)
    return p


def _is_too_large(e: BaseException) -> bool:
    """torch raises RuntimeError for a tensor too large to allocate (CPU: "can't allocate memory"; CUDA:
    OutOfMemoryError) or even to size ("Storage size calculation overflowed", on the meta device too)."""
    text = str(e)
    return isinstance(e, MemoryError) or any(
        s in text for s in ("can't allocate memory", "out of memory", "Storage size calculation overflowed")
    )


_DOTTED = re.compile(r"^--([A-Za-z_][\w]*(\.[\w]+)+)=")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--optim.lr=3e-4` is accepted as a spelling of the override `optim.lr=3e-4`
    argv = [a[2:] if _DOTTED.match(a) else a for a in argv]
    args, extra = parser.parse_known_args(argv)
    # argparse takes the positionals in one run: `train R --data-dir X key=v` leaves `key=v` over
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = [*(args.overrides or []), *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    from archlab.utils.errors import ArchlabError, one_line, os_error_message

    def fail(message: str, code: int) -> int:  # one line, however long or multi-line the message
        if os.environ.get("RANK", "0") == "0":  # under torchrun the ranks fail alike: rank 0 says it once
            err_console.print(f"archlab: error: {one_line(message)}", markup=False, highlight=False, soft_wrap=True)
        return code

    debug = os.environ.get("ARCHLAB_DEBUG") == "1"
    try:
        return int(args.fn(args) or 0)
    except ArchlabError as e:
        if debug:
            raise
        return fail(str(e), e.exit_code)
    except _UsageError as e:
        return fail(str(e), 2)
    except OSError as e:  # a path the user gave: too long, missing, not writable, a file where a folder goes
        if debug:
            raise
        return fail(os_error_message(e), 2)
    except (MemoryError, RuntimeError) as e:  # a model or batch too large for this machine (model.width=10**12)
        if debug or not _is_too_large(e):
            raise
        asked = re.search(r"allocate (\d+) bytes", str(e))
        need = f" (it asked for {int(asked.group(1)):,} bytes)" if asked else ""
        return fail(f"out of memory{need}: make the model (its width, depth) or the batch smaller", 2)
    except KeyboardInterrupt:
        err_console.print("archlab: interrupted", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
