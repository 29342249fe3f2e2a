"""Any UTF-8 text file as a language-modelling data set (``data.name=text_file
data.options.path=FILE``): a chronological split by characters, a tokenizer trained on the train
split only and saved in the run directory, and one-line errors for files that cannot be used."""

import json
import math

import pytest
import torch

from archlab.cli import main
from archlab.data import dataset_info, load_dataset, load_train_val, shared_points
from archlab.data.text import split_text
from archlab.data.tokenizers import load_tokenizer

# 40 numbered speeches: every stretch of the file is distinguishable from every other
SPEECHES = "".join(f"CITIZEN {i}:\nWe are accounted poor citizens, the patricians good {i}.\n\n" for i in range(400))


@pytest.fixture(scope="module")
def text_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "speeches.txt"
    path.write_text("é" + SPEECHES + "Ω the end\n", encoding="utf-8")  # 'é' in train only, 'Ω' in test only
    return path


def test_the_split_is_chronological_by_characters_and_the_tokenizer_sees_train_only(text_path):
    text = text_path.read_text(encoding="utf-8")
    parts = split_text(text)
    assert "".join(parts.values()) == text  # consecutive stretches, nothing dropped or shared
    assert [len(p) for p in parts.values()] == [int(0.9 * len(text)), int(0.95 * len(text)) - int(0.9 * len(text)),
                                                 len(text) - int(0.95 * len(text))]  # fmt: skip
    opts = {"path": str(text_path), "block": 16}
    info = dataset_info("text_file", opts)
    tok = info.tokenizer
    assert tok.kind == "char" and tok.itos[0] == "<unk>" and "é" in tok.stoi and "Ω" not in tok.stoi
    assert info.vocab_size == info.num_classes == len(set(parts["train"])) + 1
    ids = {s: load_dataset("text_file", s, options=opts) for s in ("train", "val", "test")}
    assert tok.decode(ids["val"].x[0]) == parts["val"][:16]  # windows read the split in order
    assert tok.decode(ids["test"].x.flatten()).startswith(parts["test"][:100])
    assert int((ids["test"].y == 0).sum()) == 1  # 'Ω' (unseen in train) is <unk> in the test split
    assert {s: len(d) for s, d in ids.items()} == info.splits == {s: (len(p) - 1) // 16 for s, p in parts.items()}
    train, val = load_train_val("text_file", val_fraction=0.0, seed=0, options=opts)
    assert len(val) == info.splits["val"] and shared_points(train, val) == 0


def test_bpe_on_a_text_file_is_trained_on_the_train_split(text_path):
    opts = {"path": str(text_path), "block": 8, "tokenizer": "bpe", "vocab_size": 300}
    info = dataset_info("text_file", opts)
    tok = info.tokenizer
    assert tok.kind == "bpe" and info.vocab_size == 300
    vocab = tok.tokenizer.get_vocab()
    assert "Ġpatricians" in vocab or "Ġpatr" in vocab  # merges of the repeated words
    test = load_dataset("text_file", "test", options=opts)
    decoded = tok.decode(torch.cat([test.x[:, 0:1], test.x[:, 1:]], 1).flatten())
    assert decoded.endswith("Ω the")  # byte level: the unseen 'Ω' is still encoded exactly
    random = load_dataset("text_file", "train", options={**opts, "sampling": "random"})
    assert hasattr(random, "sample") and random.sample(4, torch.Generator().manual_seed(0)).x.shape == (4, 8)


def _run_cli(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; give the path of a UTF-8 text file"),
        (b"", "is empty; give a file with text to train on"),
        (b" \n\t\n", "is empty; give a file with text to train on"),
        (b"caf\xe9 au lait\n" * 100, "is not UTF-8 text (byte 0xe9 at offset 3)"),
        (b"short\n", "leaves 5 char tokens in its train split (the first 90%), not more than data.options.block=64"),
    ],
)
def test_an_unusable_file_is_one_line_exit_2_before_a_run_dir(content, message, tmp_path, capsys, monkeypatch):
    path = tmp_path / "in.txt"
    if content is not None:
        path.write_bytes(content)
    argv = ["train", "shakespeare_char64/lstm_lm", "data.name=text_file", f"data.options.path={path}"]
    code, err = _run_cli(argv, capsys, tmp_path, monkeypatch)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"data.options.path: '{path}' " in err and message in err
    assert not (tmp_path / "runs").exists()


def test_bad_text_file_options_are_one_line(text_path, tmp_path, capsys, monkeypatch):
    base = ["train", "shakespeare_char64/lstm_lm", "data.name=text_file"]
    for extra, message in [
        ([], "data.options.path: give the text file to train on"),
        ([f"data.options.path={text_path}", "data.options.tokenizer=wordpiece"], "data.options.tokenizer: 'char' or"),
        ([f"data.options.path={text_path}", "data.options.tokenizer=bpe", "data.options.vocab_size=100"],
         "data.options.vocab_size: a byte-level BPE vocabulary needs room for the 256 bytes"),
        # 10⁹ made the Rust trainer abort the process on a 70 GB allocation (exit 134, a 98-line backtrace)
        ([f"data.options.path={text_path}", "data.options.tokenizer=bpe", "data.options.vocab_size=1000000000"],
         "data.options.vocab_size: vocab_size 1,000,000,000 is more than 1,048,576"),
    ]:  # fmt: skip
        code, err = _run_cli(base + extra, capsys, tmp_path, monkeypatch)
        assert code == 2 and message in err and len(err.splitlines()) == 1


def test_a_bpe_run_saves_its_tokenizer_and_samples_with_it_after_the_file_changes(text_path, tmp_path, capsys):
    path = tmp_path / "mine.txt"
    path.write_text(text_path.read_text(encoding="utf-8"), encoding="utf-8")
    runs = tmp_path / "runs"
    argv = [
        "train", "shakespeare_char64/gru_lm", "data.name=text_file", f"data.options.path={path}",
        "data.options.tokenizer=bpe", "data.options.vocab_size=300", "data.options.block=16",
        "model.hidden_size=32", "model.num_layers=1", "model.embed_dim=16", "budget.steps=30",
        "schedule.warmup_steps=5", "eval.every=30", "checkpoint.every=30", "data.eval_batch_size=64",
        "log.tensorboard=false", "--runs-dir", str(runs),
    ]  # fmt: skip
    assert main(argv) == 0
    (run_dir,) = runs.iterdir()
    saved = load_tokenizer(run_dir / "tokenizer.json")
    assert saved.kind == "bpe" and saved.vocab_size == 300
    test = json.loads((run_dir / "summary.json").read_text())["test"]
    assert test["loss"] < 5.0  # below log(300) = 5.7
    assert "bpc" not in test and test["bpb"] < test["loss"] / math.log(2)  # bits per byte, not per token
    capsys.readouterr()
    sample = ["sample", str(run_dir), "--prompt", "CITIZEN", "--tokens", "12", "--seed", "1"]
    assert main(sample) == 0
    before = capsys.readouterr().out
    assert before.startswith("CITIZEN") and len(saved.encode(before.rstrip("\n"))) >= 12
    path.write_text("zzzz qqqq " * 500, encoding="utf-8")  # the data now trains another tokenizer
    assert main(sample) == 0 and capsys.readouterr().out == before  # the run's own tokenizer is used
    assert main(["sample", str(run_dir), "--n", "4"]) == 2  # an autoencoder's option was ignored silently
    assert f"--n: {run_dir} is a language-model run (gru_lm)" in capsys.readouterr().err
    (run_dir / "tokenizer.json").write_text("{}")
    assert main(sample) == 2
    assert "tokenizer.json is not a tokenizer archlab wrote" in capsys.readouterr().err


def test_a_prompt_with_unknown_characters_or_longer_than_the_context_is_one_line(text_path):
    from archlab import create_model
    from archlab.config import TaskSpec
    from archlab.tasks import build_task
    from archlab.utils.errors import ConfigError

    info = dataset_info("text_file", {"path": str(text_path), "block": 16})
    task = build_task(TaskSpec(name="language_modeling"), info)
    v = info.vocab_size
    gpt = create_model("gpt_char", vocab_size=v, num_classes=v, block_size=16, in_shape=(16,), n_layer=1, n_embd=16)
    assert task.sample(gpt.eval(), "CITIZEN 1", 5, seed=0).startswith("CITIZEN 1")
    with pytest.raises(ConfigError, match=r"prompt: \['Ω', '☃'\] not in the 'text_file' vocabulary") as e:
        task.sample(gpt, "Ω☃ CITIZEN", 5)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="prompt: 17 tokens, longer than the model's context of 16"):
        task.sample(gpt, "CITIZEN 1: We are", 5)


def test_init_from_a_run_with_another_tokenizer_is_one_line(text_path, tmp_path, capsys):
    """Same vocabulary size, other characters: the embedding shapes match, so the weights would copy
    silently and every row would stand for another character. Refused; the same text is accepted."""
    other = tmp_path / "other.txt"
    text = text_path.read_text(encoding="utf-8")
    other.write_text(text.replace("C", "Ж"), encoding="utf-8")  # as many characters, one of them another

    def train(path, *extra):
        runs = tmp_path / f"runs{len(list(tmp_path.iterdir()))}"
        argv = [
            "train", "shakespeare_char64/gru_lm", "data.name=text_file", f"data.options.path={path}",
            "data.options.block=16", "model.hidden_size=8", "model.num_layers=1", "model.embed_dim=4",
            "budget.steps=2", "schedule.warmup_steps=1", "eval.every=2", "checkpoint.every=2",
            "data.eval_batch_size=256", "log.tensorboard=false", "log.progress=false", *extra, "--runs-dir", str(runs),
        ]  # fmt: skip
        return main(argv), runs

    code, runs = train(text_path)
    assert code == 0
    (first,) = runs.iterdir()
    capsys.readouterr()
    code, runs = train(other, f"model.init_from={first}")
    err = capsys.readouterr().err
    assert code == 2 and not runs.exists(), err
    assert (
        "model.init_from: " in err
        and "read its text with another tokenizer (char, " in err
        and len(err.splitlines()) == 1
    )
    size = load_tokenizer(first / "tokenizer.json").vocab_size
    assert f"(char, {size} tokens) than this run's data (char, {size} tokens)" in err  # the shapes match
    code, _ = train(text_path, f"model.init_from={first}")
    assert code == 0
