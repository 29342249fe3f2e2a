"""The literature's claims as runnable experiments (sweeps of recipes + a verdict), one file each."""

from archlab.experiments import (  # noqa: F401  (each module registers its experiment)
    ae_compression,
    ae_features,
    ae_latent_smoothness,
    ae_robustness,
    ae_sparsity,
    ae_vs_classical,
    attention_bottleneck,
    attention_maps,
    cnn_vs_mlp,
    data_hunger,
    diffusion_stability,
    efficient_scaling,
    gan_vs_vae,
    graph_inductive_bias,
    gru_vs_lstm,
    inductive_bias,
    mode_collapse,
    nash_equilibrium,
    oversmoothing,
    resnet_degradation,
    sequential_bottleneck,
    vanishing_gradients,
)
from archlab.experiments.base import (
    EXPERIMENTS,
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    list_experiments,
    parse_options,
    register_experiment,
    run_experiment,
)
from archlab.experiments.compare import INDUCTIVE_BIAS_MODELS, LABELS, recipe_for, run_compare
from archlab.experiments.runs import build_recipe, check_runs, train_runs

__all__ = [
    "EXPERIMENTS",
    "INDUCTIVE_BIAS_MODELS",
    "LABELS",
    "Experiment",
    "ExperimentOptions",
    "ExperimentResult",
    "build_recipe",
    "check_runs",
    "list_experiments",
    "parse_options",
    "recipe_for",
    "register_experiment",
    "run_compare",
    "run_experiment",
    "train_runs",
]
