"""Vision Transformers (ViT, Swin) and the signal Transformer classifier.

The central checks: the published parameter counts (built on the meta device), Swin's shifted-window
attention against a brute-force reference written out token by token (each token attends to the
tokens of its own shifted window in the unshifted map, with the relative position bias looked up
from the table), and the input-size rules of each model.
"""

from __future__ import annotations

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
