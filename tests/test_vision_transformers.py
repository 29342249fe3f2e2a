"""Vision Transformers (ViT, Swin) and the signal Transformer classifier.

The central checks: the published parameter counts (built on the meta device), Swin's shifted-window
attention against a brute-force reference written out token by token (each token attends to the
tokens of its own shifted window in the unshifted map, with the relative position bias looked up
from the table), and the input-size rules of each model.
"""

from __future__ import annotations

import json

import pytest
import torch

from archlab import count_params, create_model
from archlab.models.transformer.swin import WindowAttention, shifted_window_mask, window_partition
from archlab.utils.errors import ConfigError, ShapeError


# -- Swin: shifted windows ----------------------------------------------------------------------
def naive_window_id(pos: int, window: int, shift: int) -> int:
    """The window of position ``pos`` along one axis in the shifted partition drawn on the unshifted map
    (Fig. 2 of the paper, right): windows start at −s, M − s, 2M − s, …, partial at both edges."""
    return (pos + shift) // window


def test_shifted_window_mask_is_the_naive_partition():
    """After the cyclic shift, two tokens of a window may attend iff they share a window of the naive
    shifted partition of the unshifted map (8×8 map, M = 4, s = 2: nine naive windows, four batched)."""
    h = w = 8
    m, s = 4, 2
    mask = shifted_window_mask(h, w, m, (s, s))
    assert mask.shape == (4, 16, 16) and mask.dtype == torch.bool
    # where each token of each batched window came from: roll by −s, then partition
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    grid = torch.stack([ys, xs], -1).roll((-s, -s), (0, 1))  # (H, W, 2): original (y, x) after the shift
    origin = window_partition(grid[None], m)  # (nW, N, 2)
    for k in range(4):
        for i in range(16):
            for j in range(16):
                (yi, xi), (yj, xj) = origin[k, i].tolist(), origin[k, j].tolist()
                same = naive_window_id(yi, m, s) == naive_window_id(yj, m, s) and naive_window_id(
                    xi, m, s
                ) == naive_window_id(xj, m, s)
                assert bool(mask[k, i, j]) == same, (k, i, j)
    assert mask[0].all()  # the top-left window holds one region only
    assert mask[3].sum() == 4 * 4 * 4  # the bottom-right one holds four 2×2 regions


def reference_window_attention(attn: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """(S)W-MSA written out token by token on the unshifted map: token q attends to every token of its
    naive shifted window, logits q·k/√d + B̂[Δy + M − 1, Δx + M − 1] (Eq. 4)."""
    b, h, w, c = x.shape
    m, s, nh = attn.window_size, attn.shift_size, attn.num_heads
    d = c // nh
    table = attn.relative_position_bias_table.view(2 * m - 1, 2 * m - 1, nh)
    q, k, v = attn.qkv(x).view(b, h, w, 3, nh, d).unbind(3)  # each (B, H, W, h, d)
    out = torch.zeros(b, h, w, nh, d, dtype=x.dtype)
    for y in range(h):
        for x0 in range(w):
            keys = [
                (yy, xx)
                for yy in range(h)
                for xx in range(w)
                if naive_window_id(yy, m, s) == naive_window_id(y, m, s)
                and naive_window_id(xx, m, s) == naive_window_id(x0, m, s)
            ]
            kk = torch.stack([k[:, yy, xx] for yy, xx in keys], 1)  # (B, n, h, d)
            vv = torch.stack([v[:, yy, xx] for yy, xx in keys], 1)
            bias = torch.stack([table[y - yy + m - 1, x0 - xx + m - 1] for yy, xx in keys], 0)  # (n, h)
            logits = torch.einsum("bhd,bnhd->bhn", q[:, y, x0], kk) / d**0.5 + bias.T
            out[:, y, x0] = torch.einsum("bhn,bnhd->bhd", logits.softmax(-1), vv)
    return attn.proj(out.reshape(b, h, w, c))


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_equals_the_token_by_token_reference(shift):
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, num_heads=2, window_size=4, shift_size=shift).double().eval()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()  # a bias large enough to matter
        x = torch.randn(2, 8, 8, 8, dtype=torch.double)
        torch.testing.assert_close(attn(x), reference_window_attention(attn, x), rtol=1e-10, atol=1e-10)


def test_window_attention_pads_maps_that_windows_do_not_tile():
    """A 6×6 map with M = 4 is padded to 8×8 for the attention and cropped back: the output of the
    real tokens equals the reference on the zero-padded map."""
    torch.manual_seed(1)
    attn = WindowAttention(dim=8, num_heads=2, window_size=4, shift_size=2).double().eval()
    x = torch.randn(1, 6, 6, 8, dtype=torch.double)
    padded = torch.nn.functional.pad(x, (0, 0, 0, 2, 0, 2))
    with torch.no_grad():
        torch.testing.assert_close(attn(x), reference_window_attention(attn, padded)[:, :6, :6])


def test_swin_t_parameter_count_is_torchvisions():
    with torch.device("meta"):
        model = create_model("swin_t")
    assert count_params(model) == 28_288_354  # torchvision swin_t
    blocks = [b for stage in model.stages for b in stage]
    assert [b.attn.shift_size for b in blocks[:4]] == [0, 3, 0, 3]  # W-MSA and SW-MSA alternate
    assert blocks[-1].drop_path.p == pytest.approx(0.2) and blocks[0].drop_path.p == 0.0


def test_swin_takes_any_size_of_at_least_one_patch():
    torch.manual_seed(0)
    model = create_model("swin_t", in_shape=(1, 28, 28), num_classes=10, embed_dim=8, depths=(2, 2),
                         num_heads=(2, 2), window_size=4).eval()  # fmt: skip
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)  # 7×7 tokens: windows pad, merging pads
        assert model(torch.randn(1, 1, 4, 9)).shape == (1, 10)
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, H≥4, W≥4\), got \(1, 1, 3, 8\)"):
        model(torch.zeros(1, 1, 3, 8))
    with pytest.raises(ConfigError, match="not divisible by 3 heads"):
        create_model("swin_t", embed_dim=8, num_heads=(3, 6, 12, 24))


# -- parity with HF transformers (random weights from a config, no download) ----------------------
def _copy(ours: torch.nn.Module, theirs: dict[str, torch.Tensor], key_map: dict[str, str | list[str]]) -> None:
    """Load ``ours`` from HF tensors through an explicit key map (a list: concatenated along dim 0)."""
    state = {
        k: torch.cat([theirs[s] for s in src]) if isinstance(src, list) else theirs[src] for k, src in key_map.items()
    }
    result = ours.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def _linear(ours: str, theirs: str) -> dict[str, str]:
    return {f"{ours}.weight": f"{theirs}.weight", f"{ours}.bias": f"{theirs}.bias"}


def _qkv(ours: str, theirs: str) -> dict[str, list[str]]:
    """Our fused [W_Q; W_K; W_V] from HF's q_proj, k_proj, v_proj (transformers 5 names)."""
    return {f"{ours}.{p}": [f"{theirs}.{n}_proj.{p}" for n in ("q", "k", "v")] for p in ("weight", "bias")}


def test_vit_equals_hf_vit():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, layer_norm_eps=1e-6, num_labels=10, hidden_act="gelu",
    )  # fmt: skip
    hf = transformers.ViTForImageClassification(cfg).eval()
    ours = create_model("vit_b_16", in_shape=(3, 32, 32), num_classes=10, patch_size=8, hidden_dim=16,
                        num_layers=2, num_heads=2, mlp_dim=32).eval()  # fmt: skip
    key_map: dict = {
        "class_token": "vit.embeddings.cls_token",
        "pos_embedding": "vit.embeddings.position_embeddings",
        **_linear("patch_embed", "vit.embeddings.patch_embeddings.projection"),
        **_linear("encoder.norm", "vit.layernorm"),
        **_linear("head", "classifier"),
    }
    for i in range(2):
        o, t = f"encoder.layers.{i}", f"vit.layers.{i}"
        key_map |= {
            **_qkv(f"{o}.self_attn.qkv_proj", f"{t}.attention"),
            **_linear(f"{o}.self_attn.out_proj", f"{t}.attention.o_proj"),
            **_linear(f"{o}.self_attn_norm", f"{t}.layernorm_before"),
            **_linear(f"{o}.ffn_norm", f"{t}.layernorm_after"),
            **_linear(f"{o}.ffn.linear1", f"{t}.mlp.fc1"),
            **_linear(f"{o}.ffn.linear2", f"{t}.mlp.fc2"),
        }
    _copy(ours, hf.state_dict(), key_map)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(pixel_values=x).logits, rtol=1e-5, atol=1e-5)


_HF_BIAS_TABLE = "attention.relative_position_bias.relative_position_bias_table"


def test_swin_equals_hf_swin():
    """Two stages on a 16×16 token map with 4×4 windows (HF shrinks a window that covers the whole map,
    torchvision pads it: the maps here are larger than a window at every stage, where both agree)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.SwinConfig(
        image_size=32, patch_size=2, num_channels=3, embed_dim=8, depths=[2, 2], num_heads=[2, 4], window_size=4,
        num_labels=10, hidden_act="gelu",
    )  # fmt: skip
    hf = transformers.SwinForImageClassification(cfg).eval()
    ours = create_model("swin_t", in_shape=(3, 32, 32), num_classes=10, patch_size=2, embed_dim=8, depths=(2, 2),
                        num_heads=(2, 4), window_size=4).eval()  # fmt: skip
    key_map: dict = {
        **_linear("patch_embed", "swin.embeddings.patch_embeddings.projection"),
        **_linear("patch_norm", "swin.embeddings.norm"),
        **_linear("norm", "swin.layernorm"),
        **_linear("head", "classifier"),
        "merges.0.reduction.weight": "swin.encoder.layers.0.downsample.reduction.weight",
        **_linear("merges.0.norm", "swin.encoder.layers.0.downsample.norm"),
    }
    for s in range(2):
        for j in range(2):
            o, t = f"stages.{s}.{j}", f"swin.encoder.layers.{s}.blocks.{j}"
            key_map |= {
                **_qkv(f"{o}.attn.qkv", f"{t}.attention"),
                f"{o}.attn.relative_position_bias_table": f"{t}.{_HF_BIAS_TABLE}",
                **_linear(f"{o}.attn.proj", f"{t}.attention.o_proj"),
                **_linear(f"{o}.norm1", f"{t}.layernorm_before"),
                **_linear(f"{o}.norm2", f"{t}.layernorm_after"),
                **_linear(f"{o}.mlp.0", f"{t}.mlp.fc1"),
                **_linear(f"{o}.mlp.3", f"{t}.mlp.fc2"),
            }
    theirs = hf.state_dict()
    with torch.no_grad():
        for k in theirs:
            if k.endswith("relative_position_bias_table"):
                theirs[k].normal_()  # HF starts the table at 0: give the bias something to check
    _copy(ours, theirs, key_map)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(pixel_values=x).logits, rtol=1e-5, atol=1e-5)


# -- ViT and the signal Transformer ---------------------------------------------------------------
def test_vit_b_16_parameter_count_is_torchvisions():
    """86,567,656 (torchvision vit_b_16): E 768·(3·16²) + 768, class token 768, E_pos 197·768, 12 blocks of
    7,087,872, final LN 1,536, head 769,000."""
    with torch.device("meta"):
        model = create_model("vit_b_16")
    assert count_params(model) == 86_567_656
    block = 2 * 1536 + (768 * 2304 + 2304) + (768 * 768 + 768) + (768 * 3072 + 3072) + (3072 * 768 + 768)
    assert block == 7_087_872
    assert 768 * 768 + 768 + 768 + 197 * 768 + 12 * block + 1536 + 768 * 1000 + 1000 == 86_567_656
    assert model.num_patches == 196 and model.pos_embedding.shape == (1, 197, 768)


def test_vit_input_size_is_the_configured_grid():
    """The learned position table fixes the grid: the configured H×W only (no interpolation), and H, W
    multiples of P at construction."""
    model = create_model("vit_mini_p7").eval()
    assert model.input_spec == (1, 28, 28) and model.num_patches == 16
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, 28, 28\), got \(2, 1, 35, 35\)"):
        model(torch.zeros(2, 1, 35, 35))
    with pytest.raises(ConfigError, match=r"model 'vit_mini_p7': input 28×28 is not divisible into 8×8 patches"):
        create_model("vit_mini_p7", patch_size=8)
    with pytest.raises(ConfigError, match="d_model=64 is not divisible by num_heads=5"):
        create_model("vit_mini_p7", num_heads=5)


def test_vit_attention_maps_can_be_recorded():
    """tf-core's record_attention reads ViT's heads: (B, heads, N+1, N+1) rows summing to 1, and the
    recorded forward equals the default (fused) one."""
    from archlab.layers.attention import record_attention

    torch.manual_seed(0)
    model = create_model("vit_mini_p7").eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        fused = model(x)
        with record_attention(model) as maps:
            recorded = model(x)
    torch.testing.assert_close(recorded, fused, rtol=1e-5, atol=1e-5)
    assert len(maps) == 4
    alpha = maps["encoder.layers.0.self_attn"][0]
    assert alpha.shape == (2, 4, 17, 17)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 4, 17))


def test_signal_transformer_tokens_and_shape_rules():
    model = create_model("signal_transformer").eval()
    assert model.num_tokens == 10 and model.input_spec == (1, 40)
    with torch.no_grad():
        assert model(torch.randn(3, 1, 40)).shape == (3, 10)
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, 40\), got \(3, 1, 44\)"):
        model(torch.zeros(3, 1, 44))
    # a length P does not divide is zero-padded at the end: 40 steps, P = 3 → 14 segments (2 padded steps)
    padded = create_model("signal_transformer", patch_size=3).eval()
    assert padded.num_tokens == 14 and padded.pad == 2
    x = torch.randn(2, 1, 40)
    with torch.no_grad():
        same = padded(x)
        explicit = padded.forward_head(
            padded.encoder(
                torch.cat(
                    [
                        padded.class_token.expand(2, -1, -1),
                        padded.patch_embed(torch.nn.functional.pad(x, (0, 2))).transpose(1, 2),
                    ],
                    1,
                )
                + padded.pos_embedding
            )[0][:, 0]
        )
    torch.testing.assert_close(same, explicit, rtol=0, atol=0)


# -- experiments ----------------------------------------------------------------------------------
def test_data_hunger_quick(quick_experiment):
    exp, rec = quick_experiment("data-hunger")
    rows = rec["table"]["rows"]
    assert [r[0] for r in rows] == ["200"] * 3 + ["400"] * 3
    assert [r[2] for r in rows[:3]] == [61_706, 62_020, 61_894]  # CNN, MLP, ViT: the same size
    assert rec["figures"] == ["figures/accuracy_vs_data.png", "figures/gap_vs_data.png"]
    assert "CNN (LeNet-5) leads the ViT (P7, 3×48) by" in rec["verdict"] and isinstance(rec["supported"], bool)
    s = json.loads((exp / "vit_mini_p7-n200-s0" / "summary.json").read_text())
    assert s["steps"] == 10 and s["train_examples"] == 200 and s["params"] == 61_894


def test_data_hunger_needs_three_models(tmp_path, capsys):
    from archlab.cli import main

    assert main(["experiment", "data-hunger", "--set", "models={a: {name: mlp}}", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "experiment data-hunger: bad option value (models: Dictionary should have at least 3 items" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_attention_maps_quick(quick_experiment):
    """Three 5-step runs (GPT, a tiny BERT, encoder–decoder), then the recorded maps: every GPT head's weights
    are causal; every BERT head's mean weights are shares; the figures and the per-head
    table are written."""
    exp, rec = quick_experiment("attention-maps")
    assert rec["figures"] == [
        "figures/bert_layer0.png",
        "figures/bert_layer1.png",
        "figures/cross_attention.png",
        "figures/cross_attention_heads.png",
        "figures/gpt_layer0.png",
        "figures/gpt_layer3.png",
    ]
    rows = rec["table"]["rows"]
    assert len(rows) == 4 * 4 + 2 * 2 + 1 and all(len(r) == 6 for r in rows)  # the quick BERT: 2 layers × 2 heads
    assert rows[0][0] == "GPT layer 0, head 0" and rows[16][0] == "BERT layer 0, head 0"
    assert all(0.0 <= r[1] <= 1.0 and 0.0 <= r[3] <= 1.0 for r in rows[:16])
    assert all(0.0 <= v <= 1.0 for r in rows[16:20] for v in r[1:5])  # mean shares of one row's weight
    assert rec["gpt"]["above_diagonal"] == 0.0  # causal: no weight on a later character
    bert = rec["bert"]
    assert bert["tokens"][0] == "[CLS]" and bert["tokens"].count("[SEP]") == 2 and bert["length"] == len(bert["tokens"])
    assert "lazy" in "".join(bert["tokens"]) and bert["steps"] == 5
    assert rec["seq2seq"]["output"] and -1.0 <= rec["seq2seq"]["rho"] <= 1.0
    assert "BERT (5 steps" in rec["verdict"] and rec["supported"] is None


def test_attention_maps_refuses_text_outside_the_vocabulary(tmp_path, capsys):
    from archlab.cli import main

    assert main(["experiment", "attention-maps", "--set", "text=héllo", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "text: characters ['é'] are not in the GPT's vocabulary" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_spearman_of_the_alignment():
    from archlab.experiments.attention_maps import spearman

    assert spearman([0, 1, 2, 3], [0, 2, 5, 9]) == pytest.approx(1.0)
    assert spearman([0, 1, 2, 3], [3, 2, 1, 0]) == pytest.approx(-1.0)
    assert spearman([0, 1, 2], [1, 1, 1]) == 0.0  # a constant side: no order to correlate
    assert spearman([0, 1, 2, 3], [0, 0, 1, 1]) == pytest.approx(0.894, abs=1e-3)


def test_gap_closing_must_exceed_the_seed_spread():
    from archlab.experiments.cnn_vs_mlp import transformer_gap_verdict

    def acc(cnn_small, vit_small, cnn_big, vit_big):
        return {("C", 1): cnn_small, ("V", 1): vit_small, ("C", 9): cnn_big, ("V", 9): vit_big}

    # lead 10 → 1 point with paired seeds 0.2 points apart: closes (change −9, 2 s.e. ≈ 0.4)
    text, ok = transformer_gap_verdict(acc([0.80, 0.81], [0.70, 0.71], [0.90, 0.91], [0.89, 0.90]), [1, 9], "C", "V")
    assert ok is True and "closes the gap" in text and "-9.00 points" in text
    # the data-hunger full run (commit 4ea6c18, seeds 0 and 1 at 500 and 60,000 images): −0.67 points, 2 s.e. 1.57
    text, ok = transformer_gap_verdict(
        acc([0.8066, 0.7945], [0.7787, 0.7583], [0.8545, 0.8454], [0.8225, 0.8267]), [1, 9], "C", "V"
    )
    assert ok is False and "less than the seeds' spread" in text and "1.57" in text
    _, ok = transformer_gap_verdict(acc([0.80], [0.70], [0.90], [0.89]), [1, 9], "C", "V")  # one seed
    assert ok is None
    text, ok = transformer_gap_verdict(acc([0.70, 0.71], [0.80, 0.81], [0.9, 0.9], [0.9, 0.9]), [1, 9], "C", "V")
    assert ok is False and "does NOT lead" in text
    text, ok = transformer_gap_verdict(acc([0.80, 0.80], [0.79, 0.79], [0.9, 0.9], [0.8, 0.8]), [1, 9], "C", "V")
    assert ok is False and "does NOT shrink" in text
