"""Structured attention masks, known when the program is traced, and evaluated on the host row band by row band.

Every mask here is a frozen (hashable) description with a `shape` `(heads, q_len, k_len)` (heads is 1 when all heads
share the mask) and a `rows(start, stop, xp=np)` method returning the boolean band `[heads, stop - start, k_len]`
(True = attend). Bands let `block_tables` classify blocks and deduplicate partial ones without ever holding the whole
`[q_len, k_len]` mask for long sequences. With `xp=jax.numpy` the band is computed inside the program (from iotas,
not a constant the size of the mask), which is how the XLA reference applies a mask. Masks computed at run time live
in `token_selection.py`.
"""
import dataclasses

import numpy as np


def _positions(start: int, stop: int, k_len: int, xp=np):
  """Query positions `[rows, 1]` and key positions `[1, k_len]`."""
  return xp.arange(start, stop)[:, None], xp.arange(k_len)[None, :]


def _check_lengths(q_len: int, k_len: int) -> None:
  if q_len < 1 or k_len < 1:
    raise ValueError(f"mask lengths must be >= 1, got q_len={q_len}, k_len={k_len}")


class _PositionMask:
  """Base of the masks every head shares and that depend on positions only: a subclass defines
  `allows(q [rows, 1], k [1, k_len]) -> bool [rows, k_len]`, and `lengths` when it has no `q_len` / `k_len` fields."""

  @property
  def lengths(self) -> tuple[int, int]:
    return (self.q_len, self.k_len)

  @property
  def shape(self) -> tuple[int, int, int]:
    return (1, *self.lengths)

  def rows(self, start: int, stop: int, xp=np):
    q, k = _positions(start, stop, self.lengths[1], xp)
    return self.allows(q, k)[None]


@dataclasses.dataclass(frozen=True)
class CausalMask(_PositionMask):
  """Query i attends key j when j <= i + offset (offset = k_len - q_len aligns the last query with the last key)."""
  q_len: int
  k_len: int
  offset: int = 0

  def __post_init__(self):
    _check_lengths(self.q_len, self.k_len)

  def allows(self, q, k):
    return k <= q + self.offset


@dataclasses.dataclass(frozen=True)
class SlidingWindowMask(_PositionMask):
  """Query i attends key j when i - left <= j <= i + right (right=0: causal local attention)."""
  q_len: int
  k_len: int
  left: int
  right: int = 0

  def __post_init__(self):
    _check_lengths(self.q_len, self.k_len)
    if self.left < 0 or self.right < 0:
      raise ValueError(f"window sides must be >= 0, got left={self.left}, right={self.right}")

  def allows(self, q, k):
    return (k >= q - self.left) & (k <= q + self.right)


@dataclasses.dataclass(frozen=True)
class PrefixLMMask(_PositionMask):
  """Every query attends the first `prefix_length` keys bidirectionally, and the rest causally."""
  seq_len: int
  prefix_length: int

  def __post_init__(self):
    _check_lengths(self.seq_len, self.seq_len)
    if not 0 <= self.prefix_length <= self.seq_len:
      raise ValueError(f"prefix_length must be in [0, {self.seq_len}], got {self.prefix_length}")

  @property
  def lengths(self) -> tuple[int, int]:
    return (self.seq_len, self.seq_len)

  def allows(self, q, k):
    return (k < self.prefix_length) | (k <= q)


@dataclasses.dataclass(frozen=True)
class SegmentMask:
  """Query i attends key j when they share a segment id (packed sequences), optionally also causally (j <= i)."""
  q_segment_ids: tuple[int, ...]
  kv_segment_ids: tuple[int, ...]
  causal: bool = False

  def __post_init__(self):
    object.__setattr__(self, "q_segment_ids", tuple(int(s) for s in np.ravel(self.q_segment_ids)))
    object.__setattr__(self, "kv_segment_ids", tuple(int(s) for s in np.ravel(self.kv_segment_ids)))
    _check_lengths(len(self.q_segment_ids), len(self.kv_segment_ids))

  @property
  def shape(self) -> tuple[int, int, int]:
    return (1, len(self.q_segment_ids), len(self.kv_segment_ids))

  def rows(self, start: int, stop: int, xp=np):
    q_ids = xp.asarray(self.q_segment_ids[start:stop])[:, None]
    allowed = q_ids == xp.asarray(self.kv_segment_ids)[None, :]
    if self.causal:
      q, k = _positions(start, stop, len(self.kv_segment_ids), xp)
      allowed = allowed & (k <= q)
    return allowed[None]


@dataclasses.dataclass(frozen=True)
class TreeMask:
  """Speculative verification: the draft tree's nodes attend the whole context and their own ancestors.

  Queries are the `len(parents)` tree nodes; keys are the `context_length` context tokens followed by the nodes.
  `parents[i]` is the parent node of node i (-1 for a child of the context); parents precede their children.
  """
  parents: tuple[int, ...]
  context_length: int

  def __post_init__(self):
    object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
    if not self.parents or self.context_length < 0:
      raise ValueError(f"need >= 1 tree node and context_length >= 0, got {len(self.parents)} nodes and "
                       f"context_length={self.context_length}")
    for node, parent in enumerate(self.parents):
      if not -1 <= parent < node:
        raise ValueError(f"parents[{node}] must be in [-1, {node}) (parents precede children), got {parent}")

  @property
  def shape(self) -> tuple[int, int, int]:
    return (1, len(self.parents), self.context_length + len(self.parents))

  def _ancestry(self) -> np.ndarray:
    """`[nodes, nodes]` bool: entry (i, j) is True when node j is node i or one of its ancestors."""
    nodes = len(self.parents)
    ancestry = np.eye(nodes, dtype=bool)
    for node, parent in enumerate(self.parents):
      if parent >= 0:
        ancestry[node] |= ancestry[parent]
    return ancestry

  def rows(self, start: int, stop: int, xp=np):
    context = xp.ones((stop - start, self.context_length), dtype=bool)
    return xp.concatenate([context, xp.asarray(self._ancestry()[start:stop])], axis=1)[None]


class BooleanMask:
  """Any mask given as a host boolean array `[heads or 1, q_len, k_len]` (True = attend)."""

  def __init__(self, allowed: np.ndarray):
    allowed = np.asarray(allowed)
    if allowed.dtype != np.bool_ or allowed.ndim != 3 or 0 in allowed.shape:
      raise ValueError(f"mask must be a non-empty bool array [heads or 1, q_len, k_len], got {allowed.dtype} "
                       f"{allowed.shape}")
    self.allowed = allowed

  @property
  def shape(self) -> tuple[int, int, int]:
    return self.allowed.shape

  def rows(self, start: int, stop: int, xp=np):
    return xp.asarray(self.allowed[:, start:stop])


class BlockMask:
  """A mask constant on `block_q x block_k` tiles (block selection as in MoBA / NSA), given per tile.

  Attributes:
    blocks: `[heads or 1, ceil(q_len / block_q), ceil(k_len / block_k)]` bool, True = the tile is attended.
  """

  def __init__(self, blocks: np.ndarray, block_q: int, block_k: int, q_len: int, k_len: int):
    blocks = np.asarray(blocks)
    expected = (-(-q_len // block_q), -(-k_len // block_k))
    if blocks.dtype != np.bool_ or blocks.ndim != 3 or blocks.shape[1:] != expected:
      raise ValueError(f"blocks must be bool [heads or 1, {expected[0]}, {expected[1]}] for q_len={q_len}, "
                       f"k_len={k_len}, blocks {block_q}x{block_k}; got {blocks.dtype} {blocks.shape}")
    self.blocks, self.block_q, self.block_k = blocks, block_q, block_k
    self.q_len, self.k_len = q_len, k_len

  @property
  def shape(self) -> tuple[int, int, int]:
    return (self.blocks.shape[0], self.q_len, self.k_len)

  def rows(self, start: int, stop: int, xp=np):
    row_blocks = xp.asarray(self.blocks)[:, xp.arange(start, stop) // self.block_q]
    return xp.repeat(row_blocks, self.block_k, axis=2)[:, :, :self.k_len]


StructuredMask = (CausalMask | SlidingWindowMask | PrefixLMMask | SegmentMask | TreeMask | BooleanMask
                  | BlockMask)


def dense(mask: StructuredMask, xp=np):
  """The whole mask `[heads or 1, q_len, k_len]` bool; NumPy on the host by default (for tests; fine up to a few
  thousand), computed in the program with `xp=jax.numpy`."""
  return mask.rows(0, mask.shape[1], xp)
