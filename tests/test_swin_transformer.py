import pytest
import torch

from lpmatte.model.backbones.swin_transformer import (
    MASKED,
    SwinBlock,
    SwinTransformer,
    WindowAttention,
    attention_mask,
    relative_position_index,
    window_layout,
    window_partition,
    window_reverse,
)
from lpmatte.model.config import SwinConfig


def test_window_partition_round_trip():
    x = torch.randn(2, 14, 21, 5)
    windows = window_partition(x, 7)
    assert windows.shape == (2 * 2 * 3, 49, 5)
    assert torch.equal(window_reverse(windows, 7, 14, 21), x)


def test_relative_position_index_covers_table_symmetrically():
    index = relative_position_index(7)
    assert index.shape == (49, 49)
    assert index.min() == 0 and index.max() == 13 * 13 - 1
    assert torch.all(index.diagonal() == 6 * 13 + 6)  # zero offset is the table centre
    # offset (i -> j) and (j -> i) are mirror entries
    assert torch.all(index + index.T == 2 * (6 * 13 + 6))


def test_padding_mask_blocks_padded_keys_only():
    mask = attention_mask(5, 3, 2, 4, 7, 0)  # one 7x7 window, valid 5x3 corner
    assert mask.shape == (1, 49, 49)
    valid = torch.zeros(7, 7, dtype=torch.bool)
    valid[:5, :3] = True
    keys_allowed = mask[0, 0] == 0
    assert torch.equal(keys_allowed, valid.flatten())


def test_padded_window_attends_to_no_padded_token():
    torch.manual_seed(0)
    attention = WindowAttention(dim=8, num_heads=2, window=7).eval()
    mask = attention_mask(3, 4, 4, 3, 7, 0)
    x = torch.randn(1, 49, 8)
    padded = ~(mask[0, 0] == 0)
    out_a = attention(x, mask)
    x_changed = x.clone()
    x_changed[0, padded] = torch.randn(int(padded.sum()), 8) * 100
    out_b = attention(x_changed, mask)
    keep = ~padded
    assert torch.allclose(out_a[0, keep], out_b[0, keep], atol=1e-4)


def test_shifted_mask_separates_wrapped_regions():
    mask = attention_mask(14, 14, 0, 0, 7, 3)
    assert mask.shape == (4, 49, 49)
    assert (mask[0] == 0).all()  # the top-left window holds one contiguous region
    assert (mask[-1] == MASKED).any()  # the corner window mixes wrapped regions


@pytest.mark.parametrize("size", [(16, 16), (100, 60), (224, 224), (333, 517)])
def test_any_input_size_gives_finite_features(size):
    config = SwinConfig(embed_dim=24, depths=(1, 1, 2, 1), num_heads=(1, 2, 3, 4))
    model = SwinTransformer(config).eval()
    h, w = (-(-s // 16) * 16 for s in size)
    with torch.no_grad():
        features = model(torch.rand(1, 3, h, w))
    assert [f.shape[1] for f in features] == [24, 48, 96, 192]
    assert features[0].shape[-2:] == (h // 16, w // 16)
    assert all(torch.isfinite(f).all() for f in features)


def _reference_attend(block: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """The textbook path: zero-pad, roll, partition, attend, reverse, roll back, crop."""
    b, h, w, c = x.shape
    window, shift = block.window, block.shift
    pad_h, pad_w = -h % window, -w % window
    y = torch.nn.functional.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    if shift:
        y = torch.roll(y, (-shift, -shift), (1, 2))
    mask = attention_mask(h, w, pad_h, pad_w, window, shift)
    y = window_reverse(block.attn(window_partition(y, window), mask), window, h + pad_h, w + pad_w)
    if shift:
        y = torch.roll(y, (shift, shift), (1, 2))
    return y[:, :h, :w]


@pytest.mark.parametrize("shift", [0, 3])
@pytest.mark.parametrize("batch,h,w", [(1, 5, 9), (2, 14, 14), (2, 17, 10), (1, 7, 22)])
def test_gathered_windows_match_pad_roll_partition(shift, batch, h, w):
    torch.manual_seed(0)
    block = SwinBlock(dim=12, num_heads=3, window=7, shift=shift, mlp_ratio=2.0,
                      drop_path=0.0).eval()
    x = torch.randn(batch, h, w, 12)
    layout = window_layout(h, w, 7, shift, x.device)
    with torch.no_grad():
        assert torch.allclose(block._attend(x, layout), _reference_attend(block, x), atol=1e-5)
