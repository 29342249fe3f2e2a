"""Tasks: what is optimised and measured. A task owns its losses and metrics, builds the model
to fit the data, and may own the whole training step (a GAN's two optimisers)."""

from archlab.tasks.anomaly import AnomalyTask
from archlab.tasks.base import TASKS, Task, build_task, higher_is_better
from archlab.tasks.classification import ClassificationTask
from archlab.tasks.cyclegan import CycleGANTask, PairedTranslationTask
from archlab.tasks.diffusion import DiffusionTask
from archlab.tasks.forecasting import ForecastingTask
from archlab.tasks.gan import GANTask
from archlab.tasks.graph import GraphClassificationTask, GraphRegressionTask, NodeClassificationTask
from archlab.tasks.language_modeling import LanguageModelingTask
from archlab.tasks.masked_lm import MaskedLMTask
from archlab.tasks.reconstruction import DenoisingTask, ReconstructionTask
from archlab.tasks.regression import RegressionTask
from archlab.tasks.seq2seq import Seq2SeqTask
from archlab.tasks.vae import VAETask

__all__ = [
    "TASKS",
    "AnomalyTask",
    "DenoisingTask",
    "DiffusionTask",
    "ReconstructionTask",
    "VAETask",
    "higher_is_better",
    "ClassificationTask",
    "CycleGANTask",
    "PairedTranslationTask",
    "ForecastingTask",
    "GANTask",
    "GraphClassificationTask",
    "GraphRegressionTask",
    "LanguageModelingTask",
    "MaskedLMTask",
    "NodeClassificationTask",
    "RegressionTask",
    "Seq2SeqTask",
    "Task",
    "build_task",
]
