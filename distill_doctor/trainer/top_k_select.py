"""The k largest values of each row and their columns, exactly, in a fraction of torch.topk's
time on CPU when k is far below the row's width (the teacher's top k tokens of top-k KD).

torch.topk on CPU copies each row into (value, index) pairs and runs a selection over all of
them: about 2.4 ms for 10 rows x 50,257 at k = 256, a third of the top-k tail KD loss. Here a
cheap pass first picks candidates: split the columns into blocks of b, take each block's max
(one streaming `amax`), keep the k blocks with the largest maxima, copy those blocks out, and
run the same selection over the k x b candidates (recursively, with smaller blocks), then
torch.topk over the few that are left. At k = 256 and V = 50,257 it takes 0.6-0.8x
torch.topk's time, at k = 16 and 64 0.6-0.8x too (benchmarks/kd_topk_select.py).

Why the candidates hold the row's k largest values (NaN ranks above everything, as in
torch.topk; columns left over when b does not divide the width are candidates in any case).
Let v be the row's k-th largest value (counted with multiplicity), G the elements above v and
E those equal to it, so |G| < k <= |G| + |E|. A block holding an element of G has a max above
v; at most |G| < k blocks do, so the k-th largest block max is at most v, and each of them
ranks above it and is kept: G lies in the candidates. The other kept blocks are those with the
largest remaining maxima, and none of those is above v. If at least k - (blocks above v)
blocks have max == v, every one kept holds a distinct element of E, so the candidates hold at
least k - (blocks above v) >= k - |G| elements of E; if fewer do, all of them are kept, and
with them every element >= v. Either way the candidates' k largest values are the row's.
Blocks are disjoint and the left-over columns are in none, so no column can come back twice.
Each further level applies the same argument to the candidates of the one before.

Ties: which of the columns tied at the k-th value come back is arbitrary, as it is in
torch.topk (the two may choose differently): the values returned are the same multiset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

# Candidate block widths, level by level. On this CPU (AVX2) `amax` over rows of 32 runs at
# the speed of a plain pass, over 8 or 16 at a third of it; but the final topk slows down
# once its candidates outgrow L1 (torch.topk over 2,048 pairs took a fifth of the time of
# 8,192 on cached rows), so a second level with blocks of 8 pays at k = 256 and costs little
# at k = 64. Measured: kd_topk_select.py.
LEVEL_BLOCKS = (32, 8)
# A level runs only where the row is at least this many times wider than its k x b
# candidates: nearer to that, the candidates cost about what they save.
MIN_WIDTH_RATIO = 4


# positions among a level's candidates -> columns of the row they came from
ColumnsOf = Callable[[Tensor], Tensor]


class TopK(NamedTuple):
    values: Tensor
    indices: Tensor


def top_k(x: Tensor, k: int) -> TopK:
    """The k largest values of each row of `x` (`[r, V]`) and their columns, unsorted; the
    same values as `x.topk(k, -1, sorted=False)`. Candidate blocks on CPU; elsewhere (a GPU's
    topk is one radix-select kernel) and for narrow rows, torch.topk itself."""
    if x.device.type != "cpu":
        return TopK(*x.topk(k, -1, sorted=False))
    return block_top_k(x, k, LEVEL_BLOCKS)


def block_top_k(x: Tensor, k: int, blocks: tuple[int, ...]) -> TopK:
    """`top_k` through candidate blocks of `blocks[0]` columns, then of `blocks[1]` among
    those, and so on; a level whose row is narrower than MIN_WIDTH_RATIO x k x its block
    (k close to V, k == V, fewer blocks than k) and the last one hand over to torch.topk."""
    values, columns_of = candidates(x, k, blocks)
    found = values.topk(k, -1, sorted=False)
    return TopK(found.values, columns_of(found.indices))


def candidates(x: Tensor, k: int, blocks: tuple[int, ...]) -> tuple[Tensor, ColumnsOf]:
    """Values `[r, n]` that hold each row's k largest (the k blocks of `blocks[0]` with the
    largest maxima, narrowed by the next levels, then the columns left over after the last
    whole block), and the function that maps positions among them to columns of `x`."""
    rows, width = x.shape
    if not blocks or rows == 0 or width < MIN_WIDTH_RATIO * k * blocks[0]:
        return x, same_columns
    if x.stride(1) != 1:
        x = x.contiguous()
    block = blocks[0]
    whole = width // block * block
    maxima = x[:, :whole].view(rows, whole // block, block).amax(-1)
    starts = maxima.topk(k, -1, sorted=False).indices.mul_(block)
    picked = block_windows(x, block).index_select(0, row_offsets(x, starts).view(-1))
    values, inner_columns_of = candidates(picked.view(rows, k * block), k, blocks[1:])
    from_blocks = values.shape[1]

    def columns_of(positions: Tensor) -> Tensor:
        # positions past `from_blocks` are left-over columns; clamped, the others are harmless
        inner = inner_columns_of(positions.clamp(max=from_blocks - 1))
        columns = starts.gather(-1, inner.div(block, rounding_mode="floor")).add_(inner % block)
        if whole == width:
            return columns
        return torch.where(positions < from_blocks, columns, positions - from_blocks + whole)

    if whole == width:
        return values, columns_of
    return torch.cat([values, x[:, whole:]], -1), columns_of


def same_columns(positions: Tensor) -> Tensor:
    return positions


def block_windows(x: Tensor, block: int) -> Tensor:
    """Every run of `block` consecutive elements of `x`'s memory as a row, `[span - block + 1,
    block]` (a view, overlapping): index_select copies whole blocks out of it as rows, about
    three times as fast as a gather of their elements or an advanced index of `x` as blocks."""
    span = (x.shape[0] - 1) * x.stride(0) + x.shape[1]
    return x.as_strided((span - block + 1, block), (1, 1))


def row_offsets(x: Tensor, columns: Tensor) -> Tensor:
    """`columns` `[r, n]` of `x` as offsets into the memory under `block_windows`."""
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return columns + rows * x.stride(0)
