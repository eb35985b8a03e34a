"""benchmarks/speculative.py's LlamaGen rows run every sampler on a tiny random LlamaGen (the path CI runs; on a
GPU the same function times converted checkpoints)."""
import pytest

import benchmark_scripts  # pylint: disable=g-bad-import-order


@pytest.mark.slow
def test_llamagen_rows_cover_every_sampler_with_sane_statistics():
  """The t2i path (captions, paired null captions); the c2i one differs only in its labels."""
  benchmark = benchmark_scripts.load("speculative")
  (target, draft), captions, masks = benchmark.random_llamagen("caption")
  rows = list(benchmark.llamagen_rows(*target, draft=draft, captions=captions, caption_masks=masks,
                                      setting="sjd_t2i", batches=(2,), repeats=1))
  names = [row["sampler"] for row in rows]
  assert names[0] == "plain AR" and len(names) == 5 and any("lossless" in n for n in names)
  for row in rows:
    assert row["tokens_per_s"] > 0 and 0.0 <= row["acceptance"] <= 1.0
    assert 1.0 <= row["step_compression"] <= target[0].sequence_length
  assert rows[0]["step_compression"] == 1.0 and rows[0]["acceptance"] == 0.0
