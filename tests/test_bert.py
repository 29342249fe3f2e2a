"""BERT: equal to HF ``BertForPreTraining`` / ``BertForSequenceClassification`` with copied weights,
bert-base's parameter count, the pre-training data (NSP pairs, MLM masking rates checked
statistically), the masked_lm task, and model.init_from (fine-tuning from another run)."""

import pytest
import torch
from torch.nn import functional as F

from archlab import count_params, create_model
from archlab.data.bert import CLS_ID, MASK_ID, PAD_ID, SEP_ID, SentencePairs, _Corpus
from archlab.data.transforms import IGNORE_INDEX, MLMMasking
from archlab.models.transformer.bert import hf_bert_key_map
from archlab.utils.errors import ConfigError, ShapeError

transformers = pytest.importorskip("transformers")

SMALL = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, max_position_embeddings=24
)


def _hf(cls, attn: str, **kw):
    cfg = transformers.BertConfig(
        vocab_size=99, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **SMALL, **kw
    )
    cfg._attn_implementation = attn
    torch.manual_seed(0)
    model = cls(cfg).eval()
    with torch.no_grad():  # HF inits biases 0 and LayerNorm 1/0: perturb them so they are tested too
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def _copy(hf, ours, head: str) -> None:
    """HF weights → ours through the explicit key map (Q, K, V concatenated into the fused projection)."""
    sd = hf.state_dict()
    keys = hf_bert_key_map(ours.config.num_hidden_layers, head)
    ours.load_state_dict({k: torch.cat([sd[n] for n in v.split("|")]) for k, v in keys.items()}, strict=False)
    tied = {"mlm.decoder.weight"} if head == "pretraining" else set()
    assert set(ours.state_dict()) == set(keys) | tied  # every tensor of ours is mapped
    used = {n for v in keys.values() for n in v.split("|")}
    hf_tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert {k for k in sd if "position_ids" not in k and "token_type_ids" not in k} - used <= hf_tied


def _inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 99, (3, 20), generator=g)
    segments = torch.zeros(3, 20, dtype=torch.long)
    segments[:, 9:] = 1
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 14:], mask[2, 9:] = 0, 0  # padded rows
    return ids, segments, mask


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_equals_hf_bert_for_pretraining(attn):
    hf = _hf(transformers.BertForPreTraining, attn)
    ours = create_model("bert_base", head="pretraining", vocab_size=99, in_shape=(20,), **SMALL,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).eval()  # fmt: skip
    _copy(hf, ours, "pretraining")
    ids, segments, mask = _inputs()
    with torch.no_grad():
        ref = hf(input_ids=ids, token_type_ids=segments, attention_mask=mask)
        mlm, nsp = ours(ids, token_type_ids=segments, attention_mask=mask)
    assert mlm.shape == (3, 20, 99) and nsp.shape == (3, 2)
    torch.testing.assert_close(mlm, ref.prediction_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(nsp, ref.seq_relationship_logits, rtol=0, atol=1e-5)
    assert ours.mlm.decoder.weight is ours.embeddings.word_embeddings.weight  # tied output layer


def test_equals_hf_bert_for_sequence_classification():
    hf = _hf(transformers.BertForSequenceClassification, "sdpa", num_labels=3)
    ours = create_model("bert_mini", num_classes=3, vocab_size=99, in_shape=(20,), **SMALL,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).eval()  # fmt: skip
    _copy(hf, ours, "classification")
    ids, segments, mask = _inputs()
    with torch.no_grad():
        ref = hf(input_ids=ids, token_type_ids=segments, attention_mask=mask).logits
        torch.testing.assert_close(ours(ids, segments, mask), ref, rtol=0, atol=1e-5)


def test_bert_base_parameter_counts_equal_hf():
    with torch.device("meta"):
        hf_pre = transformers.BertForPreTraining(transformers.BertConfig())
        hf_cls = transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=2))
        ours_pre, ours_cls = create_model("bert_base", head="pretraining"), create_model("bert_base")
    assert count_params(ours_pre) == sum(p.numel() for p in hf_pre.parameters()) == 110_106_428
    assert count_params(ours_cls) == sum(p.numel() for p in hf_cls.parameters()) == 109_483_778


def test_bad_input_is_one_line():
    model = create_model("bert_mini", **SMALL, vocab_size=50, in_shape=(8,))
    with pytest.raises(ShapeError, match="25 tokens exceed the model's context of max_position_embeddings=24"):
        model(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"attention_mask: expected shape \(2, 8\) like x, got \(2, 7\)"):
        model(torch.zeros(2, 8, dtype=torch.long), attention_mask=torch.ones(2, 7))
    with pytest.raises(ConfigError, match="not divisible by num_heads=5"):
        create_model("bert_mini", hidden_size=384, num_attention_heads=5)
    with pytest.raises(ConfigError, match="set model.max_position_embeddings ≥ 64"):
        create_model("bert_mini", in_shape=(64,), max_position_embeddings=32)


# ---------------------------------------------------------------------------- pre-training data


def _synthetic_pairs(max_len: int = 32) -> SentencePairs:
    """30 documents of 10 sentences; sentence k is 3–9 copies of token 5 + k (its id is readable)."""
    sentences = [[5 + k] * (3 + k % 7) for k in range(300)]
    anchors = torch.tensor([k for k in range(300) if k % 10 != 9])  # a document's last has no next
    return SentencePairs(_Corpus(sentences, anchors), max_len, vocab_size=5000, seed=3)


def test_sentence_pairs_are_half_next_half_random():
    ds = _synthetic_pairs()
    anchors = ds.corpus.anchors[torch.randint(len(ds), (4000,), generator=torch.Generator().manual_seed(0))]
    b = ds._examples(anchors, torch.Generator().manual_seed(1))
    nsp = b.y[1]
    assert 0.465 < nsp.float().mean() < 0.535  # 50% NotNext; 4000 draws: σ = 0.008
    for i in range(4000):
        row = b.x[i][b.attention_mask[i].bool()].tolist()
        seps = [j for j, t in enumerate(row) if t == SEP_ID]
        assert row[0] == CLS_ID and len(seps) == 2 and seps[1] == len(row) - 1
        a, second = row[1], row[seps[0] + 1]
        assert a == 5 + int(anchors[i])
        assert (second == a + 1) == (nsp[i] == 0)  # IsNext ⇔ B is the next sentence of A's document
        seg = b.token_type_ids[i][: len(row)].tolist()
        assert seg == [0] * (seps[0] + 1) + [1] * (len(row) - seps[0] - 1)
    assert (b.x[~b.attention_mask.bool()] == PAD_ID).all()


def test_mlm_masking_rates_and_specials_are_never_masked():
    ds = _synthetic_pairs(max_len=48)
    g = torch.Generator().manual_seed(2)
    b = ds._examples(ds.corpus.anchors[torch.randint(len(ds), (6000,), generator=g)], g)
    masked = MLMMasking(MASK_ID, 5000, special_ids=(0, 1, 2, 3, 4))(b, torch.Generator().manual_seed(5))
    labels, x0, x = masked.y[0], b.x, masked.x
    special = (x0 < 5) | ~b.attention_mask.bool()  # [CLS], [SEP], [PAD]
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any() and torch.equal(x[special], x0[special])  # never touched
    assert torch.equal(labels[chosen], x0[chosen]) and torch.equal(x[~chosen], x0[~chosen])
    eligible = int((~special).sum())
    assert eligible > 60_000
    assert abs(int(chosen.sum()) / eligible - 0.15) < 0.006  # σ ≈ 0.0013
    n = int(chosen.sum())
    to_mask = (x == MASK_ID) & chosen
    kept = (x == x0) & chosen
    randomised = chosen & ~to_mask & ~kept
    assert abs(int(to_mask.sum()) / n - 0.8) < 0.02  # σ ≈ 0.0038
    assert abs(int(randomised.sum()) / n - 0.1) < 0.015  # σ ≈ 0.0029 (a random draw equal to the token: 1/5000)
    assert abs(int(kept.sum()) / n - 0.1) < 0.015
    assert (x[randomised] >= 5).all()  # random replacements are ordinary tokens
    again = MLMMasking(MASK_ID, 5000, special_ids=(0, 1, 2, 3, 4))(b, torch.Generator().manual_seed(5))
    assert torch.equal(again.x, x) and torch.equal(again.y[0], labels)  # reproducible from the generator
    assert torch.equal(masked.y[1], b.y[1])  # NSP labels pass through


def test_evaluation_examples_are_fixed_whatever_the_batching():
    ds = _synthetic_pairs()
    whole = ds[torch.arange(12)]
    halves = [ds[torch.arange(0, 6)], ds[torch.arange(6, 12)]]
    for f in ("x", "token_type_ids", "attention_mask"):
        assert torch.equal(getattr(whole, f), torch.cat([getattr(h, f) for h in halves]))
    assert torch.equal(whole.y[0], torch.cat([h.y[0] for h in halves]))
    assert (whole.y[0] != IGNORE_INDEX).any()  # evaluation batches are masked too


def test_masked_lm_loss_is_mlm_mean_over_masked_plus_nsp():
    from archlab.config import TaskSpec
    from archlab.data import dataset_info
    from archlab.tasks import build_task

    task = build_task(TaskSpec(name="masked_lm"), dataset_info("bert_pretrain"))  # trains no tokenizer
    model = create_model("bert_mini", head="pretraining", **SMALL, vocab_size=5000, in_shape=(24,)).eval()
    batch = _synthetic_pairs(max_len=24)[torch.arange(16)]
    loss, logs = task.training_loss(model, batch)
    mlm, nsp = model(batch.x, batch.token_type_ids, batch.attention_mask)
    chosen = batch.y[0] != IGNORE_INDEX
    expect_mlm = F.cross_entropy(mlm[chosen], batch.y[0][chosen])
    expect_nsp = F.cross_entropy(nsp, batch.y[1])
    torch.testing.assert_close(loss, expect_mlm + expect_nsp)
    torch.testing.assert_close(logs["mlm_loss"], expect_mlm)
    ev = task.evaluate(model, [batch])  # one batch: the same numbers
    assert ev["mlm_loss"] == pytest.approx(float(expect_mlm.detach()), rel=1e-5)
    assert ev["loss"] == pytest.approx(float((expect_mlm + expect_nsp).detach()), rel=1e-5)
    assert 0 <= ev["mlm_accuracy"] <= 1 and 0 <= ev["nsp_accuracy"] <= 1


# ---------------------------------------------------------------------------- fine-tuning from another run


def test_init_from_copies_the_matching_weights_of_another_run(tmp_path, write_recipe):
    from safetensors.torch import load_file

    from archlab.config import load_recipe
    from archlab.engine import Trainer

    first = Trainer(load_recipe(write_recipe(**{"budget.steps": 5})), runs_dir=tmp_path / "a", quiet=True)
    first.fit()
    saved = load_file(str(next((first.run_dir / "checkpoints").glob("step-*")) / "model.safetensors"))
    # the same network: every tensor is copied before the first step (another seed would init it apart)
    recipe = load_recipe(write_recipe(**{"model.init_from": str(first.run_dir), "seed": 99}))
    second = Trainer(recipe, runs_dir=tmp_path / "b", quiet=True)
    own = second.model.state_dict()
    assert second.init_report["copied"] == len(saved) and second.init_report["kept"] == []
    for k, t in saved.items():
        assert torch.equal(own[k], t), k
    deeper = load_recipe(write_recipe(**{"model.init_from": str(first.run_dir), "model.depth": 3}))
    third = Trainer(deeper, runs_dir=tmp_path / "c", quiet=True)
    assert third.init_report["kept"] and third.init_report["copied"] < len(third.model.state_dict())


def test_mlm_head_at_chosen_positions_equals_the_full_logits_there():
    """forward(..., mlm_positions=M) computes the MLM decoder at the M positions only (BERT's
    gather_indexes): the same logits as the full (B, T, V) output picked at those positions."""
    torch.manual_seed(0)
    model = create_model("bert_mini", head="pretraining", vocab_size=50, in_shape=(12,)).eval()
    x = torch.randint(0, 50, (3, 12))
    chosen = torch.rand(3, 12) < 0.3
    full, nsp_full = model(x)
    picked, nsp = model(x, mlm_positions=chosen)
    assert picked.shape == (int(chosen.sum()), 50)
    torch.testing.assert_close(picked, full[chosen], rtol=0, atol=1e-6)
    torch.testing.assert_close(nsp, nsp_full, rtol=0, atol=0)
    with pytest.raises(ShapeError, match="mlm_positions: expected shape"):
        model(x, mlm_positions=chosen[:, :5])
