"""A narrower refiner cut out of a trained one: the starting point for distilling it.

Sessions 19 and 20 trained students from random weights, and both ended about 0.03 from the
teacher's patches. Structured pruning keeps, in every layer, the teacher's channels that
matter most, with their trained weights (channels by |BatchNorm scale| as in network
slimming; attention heads, MLP units and the attention stream by the size of the weights
that read and write them), so distillation starts from the teacher's function narrowed
rather than from noise. Cut to the teacher's own widths it is the teacher exactly.
"""

from __future__ import annotations

import torch

from lpmatte.errors import LpmatteError
from lpmatte.model.config import RefinerConfig
from lpmatte.model.refiner import IN_CHANNELS, Refiner


def top_channels(importance: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` largest entries, in their original order."""
    return importance.topk(count).indices.sort().values


def bn_importance(block) -> torch.Tensor:
    """|scale| of a conv -> BatchNorm -> activation block's BatchNorm."""
    return block[1].weight.detach().abs()


def stream_importance(refiner: Refiner) -> torch.Tensor:
    """How much each attention-stream dimension is read downstream: the column norms of every
    weight that reads it (after the LayerNorm scale folded in), plus the decoder's token_in."""
    importance = refiner.decoder.token_in.weight.detach().norm(dim=0)
    for block in refiner.attention.blocks:
        first = block.norm1.weight.detach().abs()
        second = block.norm2.weight.detach().abs()
        importance = importance + first * (block.q.weight.detach().norm(dim=0)
                                           + block.kv.weight.detach().norm(dim=0))
        importance = importance + second * block.mlp[0].weight.detach().norm(dim=0)
    return importance


def head_importance(block, num_heads: int) -> torch.Tensor:
    """Per head: the norm of its value rows times the norm of the projection columns it feeds."""
    dim = block.proj.weight.shape[0]
    values = block.kv.weight.detach()[dim:].reshape(num_heads, -1).norm(dim=1)
    projected = block.proj.weight.detach().t().reshape(num_heads, -1).norm(dim=1)
    return values * projected


def head_dims(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    return (heads[:, None] * head_dim + torch.arange(head_dim)).flatten()


def check_prunable(teacher: RefinerConfig, student: RefinerConfig) -> None:
    narrower = all(s <= t for s, t in zip(
        (*student.encoder_channels, *student.decoder_channels, student.attention_dim,
         student.num_heads, student.mlp_dim),
        (*teacher.encoder_channels, *teacher.decoder_channels, teacher.attention_dim,
         teacher.num_heads, teacher.mlp_dim)))
    same_shape = (len(student.encoder_channels) == len(teacher.encoder_channels)
                  and len(student.decoder_channels) == len(teacher.decoder_channels)
                  and student.use_cra and teacher.use_cra
                  and student.decoder == teacher.decoder == "resize"
                  and student.search_range == teacher.search_range)
    head_width = teacher.attention_dim // teacher.num_heads
    same_head = head_width == student.attention_dim // student.num_heads
    if not (narrower and same_shape and same_head):
        raise LpmatteError("the student refiner must be the teacher's (resize decoder, CRA) with "
                           "no wider layer and the same head width to be pruned from it")


def pruned_refiner_state(teacher: Refiner, config: RefinerConfig) -> dict[str, torch.Tensor]:
    """The state dict of a ``Refiner(config)`` whose every weight is a slice of ``teacher``'s."""
    check_prunable(teacher.config, config)
    source = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    state: dict[str, torch.Tensor] = {}

    def take(name: str, rows=None, cols=None) -> None:
        tensor = source[name]
        if rows is not None:
            tensor = tensor[rows]
        if cols is not None:
            tensor = tensor[:, cols]
        state[name] = tensor.contiguous()

    def take_block(prefix: str, out_keep, in_keep) -> None:
        take(f"{prefix}.0.weight", out_keep, in_keep)
        for field in ("weight", "bias", "running_mean", "running_var"):
            take(f"{prefix}.1.{field}", out_keep)
        state[f"{prefix}.1.num_batches_tracked"] = source[f"{prefix}.1.num_batches_tracked"]

    keep_in = torch.arange(IN_CHANNELS)
    for i, width in enumerate(config.encoder_channels):
        keep = top_channels(bn_importance(teacher.encoder.layers[i]), width)
        take_block(f"encoder.layers.{i}", keep, keep_in)
        keep_in = keep
    encoded = keep_in
    stream = top_channels(stream_importance(teacher), config.attention_dim)
    take("token.weight", stream, encoded)
    take("token.bias", stream)
    keep_heads = top_channels(sum(head_importance(b, teacher.config.num_heads)
                                  for b in teacher.attention.blocks), config.num_heads)
    take("attention.bias_table", cols=keep_heads)
    head_dim = teacher.config.attention_dim // teacher.config.num_heads
    dims = head_dims(keep_heads, head_dim)
    for b, block in enumerate(teacher.attention.blocks):
        prefix = f"attention.blocks.{b}"
        for norm in ("norm1", "norm2"):
            take(f"{prefix}.{norm}.weight", stream)
            take(f"{prefix}.{norm}.bias", stream)
        take(f"{prefix}.q.weight", dims, stream)
        take(f"{prefix}.q.bias", dims)
        kv_rows = torch.cat([dims, dims + teacher.config.attention_dim])
        take(f"{prefix}.kv.weight", kv_rows, stream)
        take(f"{prefix}.kv.bias", kv_rows)
        take(f"{prefix}.proj.weight", stream, dims)
        take(f"{prefix}.proj.bias", stream)
        hidden = top_channels(block.mlp[0].weight.detach().norm(dim=1)
                              * block.mlp[2].weight.detach().norm(dim=0), config.mlp_dim)
        take(f"{prefix}.mlp.0.weight", hidden, stream)
        take(f"{prefix}.mlp.0.bias", hidden)
        take(f"{prefix}.mlp.2.weight", stream, hidden)
        take(f"{prefix}.mlp.2.bias", stream)
    decoder = teacher.decoder
    first = top_channels(bn_importance(decoder.up1), config.decoder_channels[0])
    take_block("decoder.up1", first, encoded)
    take("decoder.token_in.weight", first, stream)
    second = top_channels(bn_importance(decoder.up2), config.decoder_channels[1])
    take_block("decoder.up2", second, first)
    fused = top_channels(bn_importance(decoder.fuse), config.decoder_channels[2])
    region_inputs = teacher.config.decoder_channels[1] + torch.arange(IN_CHANNELS)
    take_block("decoder.fuse", fused, torch.cat([second, region_inputs]))
    take("decoder.out.weight", cols=fused)
    take("decoder.out.bias")
    missing = set(Refiner(config).state_dict()) - set(state)
    if missing:  # a refiner layer this function does not know: fail rather than leave it random
        raise LpmatteError(f"cannot prune the refiner's {', '.join(sorted(missing))}")
    return state
