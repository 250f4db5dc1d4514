"""Region selection (Sec. 3.2): which 1/8 cells to refine, and their 8x8 crops and pastes.

A region is addressed by the (batch, row, col) of its cell on the 1/8 grid; it covers
full-resolution pixels [8 * row, 8 * row + 8) x [8 * col, 8 * col + 8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lpmatte.trimap import UNKNOWN


def predicted_unknown(trimap_scores: torch.Tensor) -> torch.Tensor:
    """(B, 3, h, w) trimap logits or probabilities -> (B, 1, h, w) bool: cells whose argmax
    is "unknown"."""
    return trimap_scores.argmax(1, keepdim=True) == UNKNOWN


def any_in_cells(mask: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """(B, C, H, W) bool -> (B, C, ceil(H / cell), ceil(W / cell)) bool: whether any pixel of
    each cell is set (pixels past the image count as unset). any() over a view of the
    cells: at 4K about 2.5x faster than max-pooling a float copy of the mask."""
    b, c, height, width = mask.shape
    rows, cols = -(-height // cell), -(-width // cell)
    if (rows * cell, cols * cell) != (height, width):
        whole = mask.new_zeros(b, c, rows * cell, cols * cell)
        whole[..., :height, :width] = mask
        mask = whole
    return mask.view(b, c, rows, cell, cols, cell).any(5).any(3)


def fit_mask(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """A (B, 1, rows, cols) cell mask padded with False to the padded grid (h, w)."""
    pad_h, pad_w = grid[0] - mask.shape[-2], grid[1] - mask.shape[-1]
    return F.pad(mask, (0, pad_w, 0, pad_h), value=False) if pad_h or pad_w else mask


def select_regions(trimap_probs: torch.Tensor, valid_size: tuple[int, int] | None = None,
                   region_mask: torch.Tensor | None = None,
                   max_regions: int | None = None) -> torch.Tensor:
    """Cells whose trimap argmax is "unknown" -> (N, 3) long tensor of (batch, row, col).

    Args:
        trimap_probs: (B, 3, h, w) probabilities on the 1/8 grid.
        valid_size: (rows, cols) of the grid covering the unpadded image; cells beyond
            it are padding and never selected.
        region_mask: (B, 1, h, w) bool; when given it replaces the argmax selection.
        max_regions: keep at most this many per image, the most uncertain first
            (highest "unknown" probability), to bound latency.
    """
    selected = (predicted_unknown(trimap_probs) if region_mask is None else region_mask)[:, 0]
    if valid_size is not None:
        selected = selected.clone()
        selected[:, valid_size[0]:] = False
        selected[:, :, valid_size[1]:] = False
    if max_regions is not None:
        selected = _keep_most_uncertain(selected, trimap_probs, max_regions)
    return selected.nonzero()


def _keep_most_uncertain(selected: torch.Tensor, trimap_probs: torch.Tensor,
                         max_regions: int) -> torch.Tensor:
    uncertainty = trimap_probs[:, UNKNOWN].float().flatten(1)  # [B, h*w]
    uncertainty = uncertainty.masked_fill(~selected.flatten(1), -1.0)
    keep = min(max_regions, uncertainty.shape[1])
    top = uncertainty.topk(keep, dim=1).indices
    capped = torch.zeros_like(selected.flatten(1))
    capped.scatter_(1, top, True)
    return (capped & selected.flatten(1)).view_as(selected)


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """A uint8 image (0..255) as contiguous float32 in [0, 1], in one pass that converts and
    reorders (an HxWx3 array's planar view included); a float tensor as it is. The
    inference pipeline keeps a large uint8 image as bytes and converts only what it reads
    (crops, windows): the same values as converting the whole image first."""
    if x.dtype != torch.uint8:
        return x
    return x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)


def _as_cells(x: torch.Tensor, size: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, c, h // size, size, w // size, size)


def crop_regions(x: torch.Tensor, regions: torch.Tensor, size: int = 8) -> torch.Tensor:
    """(B, C, H, W) with H, W multiples of ``size`` -> (N, C, size, size) crops."""
    b, r, c = regions.unbind(1)
    return _as_cells(x, size)[b, :, r, :, c, :]  # advanced indices first: [N, C, s, s]


def upsampled_regions(coarse: torch.Tensor, regions: torch.Tensor,
                      size: int = 8) -> torch.Tensor:
    """The (N, C, size, size) crops at ``regions`` of ``coarse`` (B, C, h, w) upsampled
    bilinearly by ``size`` (align_corners False), without upsampling the whole map: a
    cell's pixels interpolate only its 3x3 neighbourhood, whose border the upsampling
    would clamp to the edge as a replicate pad does. The centre cell of an upsampled 3x3
    neighbourhood is a fixed linear map of it (:func:`centre_weights` on rows and on
    columns), so only those pixels are computed (upsampling all 9 cells was 15 ms of a 4K
    image)."""
    padded = F.pad(coarse, (1, 1, 1, 1), mode="replicate")
    b, r, c = regions.unbind(1)
    rows = r[:, None] + torch.arange(3, device=regions.device)  # padded rows r-1, r, r+1
    cols = c[:, None] + torch.arange(3, device=regions.device)
    neighbourhoods = padded[b[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    neighbourhoods = neighbourhoods.permute(0, 3, 1, 2)  # [N, C, 3, 3]
    weights = centre_weights(size).to(coarse)
    return weights @ neighbourhoods @ weights.t()


def centre_weights(size: int) -> torch.Tensor:
    """(size, 3): how bilinear upsampling by ``size`` (align_corners False) weighs three
    neighbouring rows for the pixels of the middle one: pixel y samples source coordinate
    0.5 + (y + 0.5) / size, between rows 0 and 1 in its first half, 1 and 2 in its second."""
    source = 0.5 + (torch.arange(size, dtype=torch.float64) + 0.5) / size
    low = source.floor().long()
    upper = source - low
    weights = torch.zeros(size, 3, dtype=torch.float64)
    weights[torch.arange(size), low] = 1 - upper
    weights[torch.arange(size), low + 1] += upper
    return weights


def refine_regions(refine, image: torch.Tensor, upsampled: torch.Tensor | None,
                   regions: torch.Tensor, neighbours: torch.Tensor, valid: torch.Tensor,
                   size: int = 8, coarse: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 1, size, size) patches from ``refine(crops, regions, neighbours, valid)``, the crops
    being ``image`` (B, 3, H, W; float in [0, 1] or uint8, :func:`unit_float`) and
    ``upsampled`` coarse alpha (B, 1, H, W) at ``regions`` stacked as (N, 4, size, size).
    Without ``upsampled``, the crops of the upsampled ``coarse`` (B, 1, H/size, W/size) are
    made for the regions alone (:func:`upsampled_regions`)."""
    if len(regions) == 0:
        return image.new_zeros(0, 1, size, size)
    alpha = (crop_regions(upsampled, regions, size) if upsampled is not None
             else upsampled_regions(coarse, regions, size))
    colour = unit_float(crop_regions(image, regions, size))
    crops = torch.cat([colour, alpha.to(colour.dtype)], 1)
    return refine(crops, regions, neighbours, valid)


def paste_regions(x: torch.Tensor, regions: torch.Tensor, patches: torch.Tensor,
                  size: int = 8, inplace: bool = False) -> torch.Tensor:
    """A copy of ``x`` (B, C, H, W) with (N, C, size, size) ``patches`` pasted at ``regions``
    (``x`` itself when ``inplace``: saves a full-resolution copy at inference)."""
    out = x if inplace else x.clone()
    if len(regions):
        b, r, c = regions.unbind(1)
        _as_cells(out, size)[b, :, r, :, c, :] = patches.to(out.dtype)
    return out
