"""Structured masks against independent NumPy definitions, and block tables that reproduce their masks exactly."""
import hypothesis
from hypothesis import strategies as st
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.kernels.sparse_attention import block_tables
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.kernels.sparse_attention import token_selection


def _rebuild(tables: block_tables.BlockTables, by_query: bool) -> np.ndarray:
  """The padded dense mask `[Bm, Hm, nq * bq, nk * bk]` that the row (or column) schedule describes."""
  (num_q, num_k), bq, bk = tables.num_blocks, tables.block_q, tables.block_k
  if by_query:
    lists = (tables.kv_count, tables.kv_full_count, tables.kv_block, tables.kv_partial)
  else:
    lists = (tables.q_count, tables.q_full_count, tables.q_block, tables.q_partial)
  count, full_count, blocks, partial = (np.asarray(a) for a in lists)
  entry = np.arange(blocks.shape[-1])
  assert ((entry < full_count[..., None]) == (partial < 0))[entry < count[..., None]].all()  # full entries first
  stored = np.asarray(tables.partial_blocks) != 0
  out = np.zeros((*tables.kind.shape[:2], num_q * bq, num_k * bk), bool)
  for b, h, outer in np.ndindex(count.shape):
    for n in range(count[b, h, outer]):
      i, j = (outer, blocks[b, h, outer, n]) if by_query else (blocks[b, h, outer, n], outer)
      allowed = np.ones((bq, bk), bool)
      if partial[b, h, outer, n] >= 0:
        allowed = np.broadcast_to(stored[partial[b, h, outer, n]], (bq, bk)).copy()
        if tables.causal:
          allowed &= np.arange(j * bk, (j + 1) * bk)[None] <= np.arange(i * bq, (i + 1) * bq)[:, None]
      out[b, h, i * bq:(i + 1) * bq, j * bk:(j + 1) * bk] = allowed
  return out


def _assert_tables_reproduce(tables, expected: np.ndarray, padded_queries_attend: bool = False) -> None:
  """Both schedules give `expected` `[Bm, Hm, q_len, k_len]`, no padded key and (unless allowed) no padded query.

  A token selection shares one key vector across a query block, so its padded queries (sliced off by the kernels)
  attend like the block's real ones.
  """
  q_len, k_len = expected.shape[2:]
  kind = np.asarray(tables.kind)
  for by_query in (True, False):
    rebuilt = _rebuild(tables, by_query)
    np.testing.assert_array_equal(rebuilt[:, :, :q_len, :k_len], expected)
    assert padded_queries_attend or not rebuilt[:, :, q_len:].any()
    assert not rebuilt[:, :, :, k_len:].any()
  padded = np.zeros(kind.shape[:2] + (kind.shape[2] * tables.block_q, kind.shape[3] * tables.block_k), bool)
  padded[:, :, :q_len, :k_len] = expected
  counts = padded.reshape(*kind.shape[:2], kind.shape[2], tables.block_q, kind.shape[3], tables.block_k).sum((3, 5))
  assert ((counts == 0) <= (kind == block_tables.SKIP)).all()
  assert ((kind == block_tables.FULL) <= (counts == tables.block_q * tables.block_k)).all()


def _tree_oracle(parents, context_length):
  nodes = len(parents)
  allowed = np.zeros((nodes, context_length + nodes), bool)
  allowed[:, :context_length] = True
  for node in range(nodes):
    walker = node
    while walker >= 0:
      allowed[node, context_length + walker] = True
      walker = parents[walker]
  return allowed


def _oracle(mask) -> np.ndarray:
  """The mask from its definition, element by element."""
  q, k = np.meshgrid(np.arange(mask.shape[1]), np.arange(mask.shape[2]), indexing="ij")
  if isinstance(mask, mask_lib.CausalMask):
    return k <= q + mask.offset
  if isinstance(mask, mask_lib.SlidingWindowMask):
    return (q - k <= mask.left) & (k - q <= mask.right)
  if isinstance(mask, mask_lib.PrefixLMMask):
    return (k < mask.prefix_length) | (k <= q)
  if isinstance(mask, mask_lib.SegmentMask):
    same = np.equal.outer(mask.q_segment_ids, mask.kv_segment_ids)
    return same & (k <= q) if mask.causal else same
  return _tree_oracle(mask.parents, mask.context_length)


STRUCTURED = [
    mask_lib.CausalMask(37, 37),
    mask_lib.CausalMask(21, 45, offset=24),
    mask_lib.SlidingWindowMask(50, 50, left=9, right=3),
    mask_lib.PrefixLMMask(41, prefix_length=13),
    mask_lib.SegmentMask([0] * 10 + [1] * 17 + [2] * 6, [0] * 10 + [1] * 17 + [2] * 6, causal=True),
    mask_lib.SegmentMask([3] * 12 + [5] * 9, [5] * 7 + [3] * 20),
    mask_lib.TreeMask((-1, 0, 0, 1, 1, 2, -1, 6, 7, 3), context_length=23),
]


@pytest.mark.parametrize("mask", STRUCTURED, ids=lambda m: type(m).__name__)
def test_structured_masks_match_their_definition(mask):
  np.testing.assert_array_equal(mask_lib.dense(mask)[0], _oracle(mask))


@pytest.mark.parametrize("mask", STRUCTURED, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("block_q, block_k", [(8, 16), (16, 8)])
def test_host_tables_reproduce_structured_masks(mask, block_q, block_k):
  _assert_tables_reproduce(block_tables.from_structured(mask, block_q, block_k), mask_lib.dense(mask)[None])


def test_block_mask_expands_its_tiles():
  blocks = np.random.default_rng(4).random((2, 3, 2)) < 0.5
  mask = mask_lib.BlockMask(blocks, block_q=16, block_k=32, q_len=40, k_len=50)
  expected = np.repeat(np.repeat(blocks, 16, axis=1), 32, axis=2)[:, :40, :50]
  np.testing.assert_array_equal(mask_lib.dense(mask), expected)
  tables = block_tables.from_structured(mask, 16, 32)
  _assert_tables_reproduce(tables, expected[None])
  assert tables.partial_blocks.shape[0] <= 4  # only the ragged edge tiles are partial


def test_causal_partial_blocks_are_stored_once():
  tables = block_tables.from_structured(mask_lib.CausalMask(128, 128), 16, 16)
  assert tables.partial_blocks.shape == (1, 16, 16)
  assert np.asarray(tables.kv_count).tolist() == [[list(range(1, 9))]]
  np.testing.assert_allclose(float(tables.density()), 36 / 64)


def _random_mask(rng, shape, density):
  allowed = rng.random(shape) < density
  allowed[..., :shape[-1] // 2] |= rng.random(shape[:-2] + (1, 1)) < 0.5  # some full blocks too
  return allowed


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), heads=st.sampled_from([1, 3]), q_len=st.integers(1, 40),
                  k_len=st.integers(1, 40), block_q=st.sampled_from([4, 8]), block_k=st.sampled_from([4, 16]),
                  density=st.floats(0.0, 1.0))
def test_host_tables_reproduce_random_masks(seed, heads, q_len, k_len, block_q, block_k, density):
  allowed = _random_mask(np.random.default_rng(seed), (heads, q_len, k_len), density)
  _assert_tables_reproduce(block_tables.from_structured(mask_lib.BooleanMask(allowed), block_q, block_k),
                           allowed[None])


@pytest.mark.parametrize("shape, density", [((2, 3, 21, 37), 0.3), ((1, 1, 40, 9), 0.9), ((2, 1, 3, 40), 0.05)])
def test_run_time_tables_reproduce_random_masks(shape, density):
  allowed = _random_mask(np.random.default_rng(sum(shape)), shape, density)
  _assert_tables_reproduce(block_tables.from_dense(jnp.asarray(allowed), 8, 16), allowed)


@pytest.mark.parametrize("causal", [False, True])
def test_token_selection_tables_reproduce_the_selection(causal):
  rng = np.random.default_rng(int(causal))
  q = jnp.asarray(rng.normal(size=(2, 45, 4, 8)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(2, 45, 2, 8)), jnp.float32)
  mask = token_selection.token_selection_mask(q, k, num_selected=11, query_block=16, causal=causal)
  selected = np.asarray(mask.selected)
  assert selected.shape == (2, 4, 3, 45) and (selected.sum(-1) <= 11).all()
  expected = np.repeat(selected, 16, axis=2)[:, :, :45]
  if causal:
    expected &= np.tril(np.ones((45, 45), bool))
  np.testing.assert_array_equal(np.asarray(mask.dense()), expected)
  for block_q in (8, 16):
    _assert_tables_reproduce(block_tables.from_token_selection(mask, block_q, 8), expected, padded_queries_attend=True)


def test_select_top_k_keeps_the_best_finite_keys():
  scores = jnp.asarray([[3.0, -jnp.inf, 1.0, 2.0, -jnp.inf], [-jnp.inf] * 4 + [0.0]])
  np.testing.assert_array_equal(np.asarray(token_selection.select_top_k(scores, 2)),
                                [[True, False, False, True, False], [False] * 4 + [True]])


def test_query_block_scores_match_mean_query_dot_keys():
  rng = np.random.default_rng(3)
  q, k = rng.normal(size=(1, 20, 4, 8)), rng.normal(size=(1, 30, 2, 8))
  scores = np.asarray(token_selection.query_block_scores(jnp.asarray(q, jnp.float32), jnp.asarray(k, jnp.float32),
                                                         16, causal=True))
  means = np.stack([q[0, :16].mean(0), q[0, 16:].mean(0)])  # [blocks, heads, dim]
  expected = np.einsum("nhd,khd->hnk", means, np.repeat(k[0], 2, axis=1)) / np.sqrt(8)
  expected[:, 0, 16:] = -np.inf
  expected[:, 1, 20:] = -np.inf
  np.testing.assert_allclose(scores[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build, message", [
    (lambda: mask_lib.CausalMask(0, 4), "lengths"),
    (lambda: mask_lib.SlidingWindowMask(4, 4, left=-1), "window"),
    (lambda: mask_lib.PrefixLMMask(4, prefix_length=5), "prefix_length"),
    (lambda: mask_lib.TreeMask((0,), context_length=2), "parents"),
    (lambda: mask_lib.BooleanMask(np.ones((4, 4), bool)), "bool array"),
    (lambda: mask_lib.BlockMask(np.ones((1, 2, 2), bool), 16, 16, q_len=40, k_len=20), "blocks must be bool"),
    (lambda: token_selection.TokenSelectionMask(jnp.ones((1, 1, 1, 4), bool), 4, query_block=12), "power of two"),
])
def test_bad_masks_raise(build, message):
  with pytest.raises(ValueError, match=message):
    build()
