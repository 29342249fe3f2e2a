"""Faults a new user's probe of the merged spine found (each kind fixed where it can occur):
out-of-range sequence-model sizes, a data folder that does not exist, duplicate YAML keys, the
error of every torchrun rank, summary numbers from two sets of weights, file modes, and eval of a
run without checkpoints."""

import json
import math
import os
import stat
from pathlib import Path

import pytest
import torch

from archlab.cli import main
from archlab.engine import evaluate_run
from archlab.experiments.compare import compare_metric
from archlab.registry import create_model
from archlab.report.latent import write_embedding
from archlab.utils.errors import ConfigError
from archlab.utils.io import atomic_write_text
from test_bad_input import _cli


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("lstm_lm", "vocab_size", 0),
        ("gru_lm", "vocab_size", -1),
        ("seq2seq", "src_vocab_size", 0),
        ("seq2seq_luong", "hidden_size", 0),
        ("lstm_lm", "dropout", 1.5),
    ],
)
def test_sequence_model_sizes_have_ranges(name, field, value, capsys, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=rf"model\.{field}: Input should be"):
        create_model(name, **{field: value})
    code, err = _cli(["info", name, "--set", f"{field}={value}"], capsys, tmp_path, monkeypatch)
    assert code == 2 and err.startswith(f"archlab: error: model.{field}: Input should be"), err


def test_a_data_dir_that_does_not_exist_is_one_line(capsys, tmp_path, monkeypatch):
    code, err = _cli(
        ["train", "digits/mlp", "budget.steps=2", "--data-dir", str(tmp_path / "nowhere")],
        capsys,
        tmp_path,
        monkeypatch,
    )
    assert code == 2
    assert err == (
        f"archlab: error: data.data_dir: '{tmp_path / 'nowhere'}' is not a directory; pass the folder that holds "
        "the 'digits' files (or leave --data-dir out)"
    )


def test_a_key_written_twice_in_a_recipe_is_one_line(capsys, tmp_path, monkeypatch):
    recipe = tmp_path / "dup.yaml"
    recipe.write_text("model: {name: mlp}\ndata: {name: digits}\nbudget: {steps: 5}\nmodel: {name: cnn1d}\n")
    code, err = _cli(["train", str(recipe)], capsys, tmp_path, monkeypatch)
    assert code == 2 and err == f"archlab: error: {recipe}: line 4: duplicate key 'model'; write each key once"


def test_under_torchrun_only_rank_0_prints_the_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "digits/mlp", "optim.lrr=1"]) == 2
    assert capsys.readouterr().err == ""  # every rank fails alike; rank 0 says it
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "digits/mlp", "optim.lrr=1"]) == 2
    assert capsys.readouterr().err.startswith("archlab: error: optim.lrr: unknown key")


def test_summary_val_and_test_come_from_the_weights_it_reports(tmp_path):
    """With eval.restore_best the summary's test numbers are the best weights'; its val numbers
    must be too (they were the last weights'), and `archlab eval` reproduces both."""
    overrides = ["budget.steps=60", "eval.every=5", "optim.lr=0.05", "schedule.name=constant", "log.tensorboard=false"]
    assert main(["train", "digits/mlp", *overrides, "--runs-dir", str(tmp_path)]) == 0  # restore_best: true
    run = next(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["step"] < 60  # the best weights are not the last ones here
    for split in ("val", "test"):
        again = evaluate_run(run, split=split)  # auto: the weights the summary reports (best)
        assert {k: again[k] for k in summary[split]} == summary[split], split


def test_files_a_run_writes_follow_the_umask(tmp_path):
    path = tmp_path / "f.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(path, "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone made 0600: unreadable on a shared runs dir


def test_eval_of_a_run_without_checkpoints_is_one_line(capsys, tmp_path, monkeypatch):
    run = tmp_path / "runs-elsewhere" / "r"
    run.mkdir(parents=True)
    assert main(["train", "digits/mlp", "budget.steps=1", "--runs-dir", str(tmp_path / "x")]) == 0
    trained = next((tmp_path / "x").iterdir())
    (run / "recipe.yaml").write_bytes((trained / "recipe.yaml").read_bytes())  # a run stopped before any save
    capsys.readouterr()
    code, err = _cli(["eval", str(run)], capsys, tmp_path, monkeypatch)
    assert code == 2 and err == f"archlab: error: {run} has no checkpoint to load (the run stopped before it saved one)"


def test_eval_prints_one_line_when_piped(capsys, tmp_path):
    assert main(["train", "digits/mlp", "budget.steps=2", "log.tensorboard=false", "--runs-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["eval", str(next(Path(tmp_path).iterdir()))]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "accuracy" in out and "loss" in out


# -- probes of the Transformer, autoencoder and graph families (each kind fixed where it occurs) ------------------
def test_a_bpe_run_reports_bits_per_byte_not_bits_per_token_as_bpc(tmp_path):
    """A BPE token spans several characters: NLL / ln 2 per token was labelled bpc. With uniform
    logits the NLL is ln V per token, so bpb = T · ln V / (ln 2 · UTF-8 bytes of the T targets)."""
    from archlab.config import TaskSpec
    from archlab.data import dataset_info, load_dataset
    from archlab.tasks import build_task

    path = tmp_path / "t.txt"
    path.write_text("".join(f"the cat {i} sat on the mat. " for i in range(300)))
    opts = {"path": str(path), "block": 8}
    for tokenizer, kept, dropped in (("bpe", "bpb", "bpc"), ("char", "bpc", "bpb")):
        info = dataset_info("text_file", {**opts, "tokenizer": tokenizer, "vocab_size": 300})
        task = build_task(TaskSpec(name="language_modeling"), info)
        batch = load_dataset("text_file", "test", options={**opts, "tokenizer": tokenizer, "vocab_size": 300})[
            list(range(4))
        ]
        v = info.tokenizer.vocab_size

        class Uniform(torch.nn.Module):
            def forward(self, x, v=v):
                return torch.zeros(*x.shape, v)

        m = task.accumulate(Uniform(), [batch])
        assert dropped not in m
        chars = len(info.tokenizer.decode(batch.y.flatten()).encode("utf-8"))  # ASCII: bytes = characters
        want = batch.y.numel() * math.log(v) / (math.log(2) * chars)
        assert m[kept].compute() == pytest.approx(want, rel=1e-6)  # the NLL is float32
        if tokenizer == "bpe":
            assert chars > 2 * batch.y.numel()  # the merges: several bytes per token


def test_compare_of_models_that_train_different_tasks_is_one_line(capsys, tmp_path, monkeypatch):
    argv = ["compare", "vae_mlp", "ae_mlp", "--data", "fashion_mnist", "--budget", "steps=2", "--seeds", "1"]
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)  # was a KeyError traceback after every run had trained
    assert code == 2 and err == (
        "archlab: error: compare: the models' recipes train different tasks (vae_mlp: vae, ae_mlp: reconstruction); "
        "one table compares one task — compare models of one task, or set task.name=... for all"
    )
    assert compare_metric("vae") == "loss" and compare_metric("node_classification") == "accuracy"
    assert compare_metric("graph_regression") == "rmse"


def test_a_graph_model_on_a_set_without_a_graph_is_one_line():
    from archlab.config import ModelSpec, TaskSpec
    from archlab.data import dataset_info
    from archlab.tasks import build_task

    task = build_task(TaskSpec(name="classification"), dataset_info("digits"))  # `compare gcn --data digits`
    with pytest.raises(ConfigError) as e:  # was "model.in_shape: Tuple should have at most 1 item …"
        task.build_model(ModelSpec(name="gcn"))
    assert str(e.value).startswith(
        "model.name: 'gcn' is a graph neural network (it passes messages along edges) but data set "
        "'digits' (image data) has no graph"
    )


def test_bernoulli_likelihood_on_data_outside_0_1_is_one_line():
    """BCE against targets outside [0, 1] trained silently and reported a 'log-likelihood' that is none
    (`train fashion_mnist/vae_mlp data.name=mnist1d`); the start-up probe refuses it."""
    from contextlib import nullcontext

    from archlab.config import TaskSpec
    from archlab.data import Batch, dataset_info
    from archlab.tasks import build_task

    class Ctx:  # the probe's StepContext, as far as the check reaches
        def next_batch(self):
            return Batch(x=torch.tensor([[[-0.5, 0.25, 1.5]]]))

        autocast = nullcontext

    task = build_task(TaskSpec(name="vae", loss="bce"), dataset_info("mnist1d"))
    with pytest.raises(ConfigError) as e:
        task.probe(None, Ctx())
    assert str(e.value) == (
        "task.loss: 'bce' is the Bernoulli likelihood of data in [0, 1], but data set 'mnist1d' has values in "
        "[-0.5, 1.5]; set task.loss=mse (the Gaussian)"
    )


def test_iwae_samples_beyond_burda_et_al_s_k_is_one_line(capsys, tmp_path, monkeypatch):
    argv = ["train", "mnist1d/vae_conv", "task.options.iwae_samples=100000", "budget.steps=2"]
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)  # was a run dir, then an evaluation of 10⁵ decoder passes
    assert code == 2 and err.startswith("archlab: error: task.options.iwae_samples: 100000 is more than 5,000")


def test_umap_of_too_few_codes_is_one_line_and_writes_nothing(tmp_path):
    model = create_model("ae_mlp", in_shape=(1, 4, 4), hidden=(8,), latent_dim=3)
    with pytest.raises(ConfigError, match=r"--projection umap: 5 codes are too few for UMAP's 15 neighbours"):
        write_embedding(model, torch.rand(5, 1, 4, 4), None, tmp_path / "lat", tmp_path / "fig", method="umap")
    assert not (tmp_path / "lat").exists() and not (tmp_path / "fig").exists()  # was a scipy traceback


def test_a_validation_fraction_that_rounds_to_no_example_is_one_line():
    """``data.val_fraction=0.2`` on karate (one graph) or 0.0001 of digits' 898 held out nothing and
    the run went on without validation; both say so now."""
    from archlab.data import ArrayDataset, split_train_val
    from archlab.data.graph import Graph, NodeDataset

    ds = ArrayDataset(torch.zeros(898, 2), torch.zeros(898, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"^data.val_fraction: 0.0001 of 898 training examples rounds to none held"):
        split_train_val(ds, 0.0001, seed=0)
    assert len(split_train_val(ds, 0.0017, seed=0)[1]) == 2  # round(1.53)
    graph = Graph(torch.eye(3), torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([0, 1, 0]))
    nodes = NodeDataset(graph, torch.tensor([True, True, False]), "karate", "train")
    with pytest.raises(ConfigError, match=r"^data.val_fraction: 'karate' is one graph whose splits are node masks"):
        split_train_val(nodes, 0.2, seed=0)


def test_checkpoint_best_of_a_run_without_validation_says_why(tmp_path):
    """karate has no validation split: `eval --checkpoint best` blamed a kill during a replace."""
    from archlab.config import load_recipe
    from archlab.engine.trainer import _choose_checkpoint
    from archlab.utils.errors import CheckpointError

    root = tmp_path / "run" / "checkpoints"
    (root / "step-00000002").mkdir(parents=True)
    with pytest.raises(CheckpointError) as e:
        _choose_checkpoint(root, "best", load_recipe("karate/gcn"))
    assert str(e.value) == (
        f"--checkpoint best: {tmp_path / 'run'} keeps no best checkpoint (it had no validation split: "
        "data.val_fraction is 0 and the data set ships none); use --checkpoint last or step-N "
        "(available: step-00000002)"
    )
    with pytest.raises(CheckpointError, match="was killed while replacing it"):  # cora validates: best/ went missing
        _choose_checkpoint(root, "best", load_recipe("cora/gcn"))


def test_attention_of_a_transformer_run_records_its_cross_attention():
    """`archlab attention` on transformer_small said "has no attention (the context-vector baseline)":
    its cached decoding returns no weights, so the task records the last decoder layer's cross-attention
    in one teacher-forced pass over the decoded tokens."""
    from archlab.config import ModelSpec, TaskSpec
    from archlab.data import dataset_info
    from archlab.tasks import build_task
    from archlab.tasks.seq2seq import _cross_attention

    task = build_task(TaskSpec(name="seq2seq"), dataset_info("num2words_en_digits"))  # its vocabularies are cached
    torch.manual_seed(0)
    spec = {"d_model": 16, "num_heads": 2, "num_encoder_layers": 1, "num_decoder_layers": 2, "d_ff": 32}
    model = task.build_model(ModelSpec(name="transformer_small", **spec)).eval()
    src, out, w = task.translate(model, "four hundred and twenty-three")
    assert w is not None and w.shape == (len(out), len(src))
    assert torch.allclose(w.sum(-1), torch.ones(len(out)), atol=1e-6)  # a distribution over the source per row
    ids = torch.tensor([task.src_vocab.encode(src[:-1], eos=True)])
    lengths = torch.tensor([ids.shape[1]])
    tokens = torch.tensor([[task.tgt_vocab.stoi[t] for t in out]])
    # causal: row t depends on the tokens ≤ t only, so a pass over a prefix gives the same rows
    assert torch.allclose(_cross_attention(model, ids, lengths, tokens[:, :3])[0], w[:3], atol=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["oversmoothing", "--set", "depths=[1000000]"], "depths must be at most 128"),  # hung building the GCNs
        (["sequential-bottleneck", "--set", "lengths=[100000000]"], "lengths: T = 100,000,000 needs 4,768,371,582 GiB"),
    ],
)
def test_experiment_sizes_that_hang_or_explode_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    code, err = _cli(["experiment", argv[0], "--quick", *argv[1:]], capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err, err  # the second was a run dir, then an out-of-memory error
