"""Token files: save/load round trip, loader errors, and the shuffled, checkpointable token batch stream."""
import numpy as np
import pytest

from jaxtok.data import tokens as tokens_lib


def _token_set(n=24, length=5, vocab=7, codebooks=None, seed=0):
  rng = np.random.default_rng(seed)
  shape = (n, length) + ((codebooks,) if codebooks else ())
  return tokens_lib.TokenSet(tokens=rng.integers(0, vocab, shape, dtype=np.int32),
                             labels=rng.integers(0, 3, n, dtype=np.int32), codebook_size=vocab,
                             grid_shape=(length,), tokenizer_workdir="/somewhere", tokenizer_step=12)


@pytest.mark.parametrize("codebooks", [None, 2])
def test_save_then_load_returns_the_same_arrays_and_metadata(tmp_path, codebooks):
  original = _token_set(codebooks=codebooks)
  tokens_lib.save_tokens(tmp_path / "sub" / "train.npz", original, split="train", seed=3)
  loaded = tokens_lib.load_tokens(tmp_path / "sub" / "train.npz")
  np.testing.assert_array_equal(loaded.tokens, original.tokens)
  np.testing.assert_array_equal(loaded.labels, original.labels)
  assert (loaded.codebook_size, loaded.grid_shape, loaded.tokenizer_workdir, loaded.tokenizer_step) == (
      7, (5,), "/somewhere", 12)
  assert loaded.sequence_length == 5 and loaded.num_codebooks == codebooks
  assert not list((tmp_path / "sub").glob("*partial*"))


@pytest.mark.parametrize("change, message", [
    (lambda s: {"tokens": s.tokens.astype(np.int64)}, "tokens must be int32"),
    (lambda s: {"tokens": s.tokens[:, 0]}, "tokens must be int32"),
    (lambda s: {"labels": s.labels[:-1]}, "labels must be int32"),
    (lambda s: {"tokens": s.tokens + 7}, r"token ids must lie in \[0, codebook_size=7\)"),
    (lambda s: {"labels": s.labels - 5}, "labels must be >= 0"),
])
def test_loader_rejects_bad_files_naming_the_problem(tmp_path, change, message):
  original = _token_set()
  bad = tokens_lib.TokenSet(**{**original.__dict__, **change(original)})
  np.savez(tmp_path / "bad.npz", tokens=bad.tokens, labels=bad.labels, codebook_size=7, grid_shape=np.array([5]))
  with pytest.raises(ValueError, match=message):
    tokens_lib.load_tokens(tmp_path / "bad.npz")


def test_loader_names_missing_arrays(tmp_path):
  np.savez(tmp_path / "partial.npz", tokens=np.zeros((2, 3), np.int32))
  with pytest.raises(ValueError, match=r"lacks \['codebook_size', 'grid_shape', 'labels'\]"):
    tokens_lib.load_tokens(tmp_path / "partial.npz")
  with pytest.raises(FileNotFoundError):
    tokens_lib.load_tokens(tmp_path / "absent.npz")


def test_batches_cover_each_epoch_once_in_a_seeded_order():
  token_set = _token_set(n=24)
  stream = tokens_lib.token_batches(token_set, batch_size=6, seed=5)
  epoch = [next(stream) for _ in range(4)]
  seen = np.concatenate([batch["tokens"] for batch in epoch])
  key = lambda rows: sorted(map(tuple, rows.tolist()))
  assert key(seen) == key(token_set.tokens)
  for batch in epoch:
    assert batch["tokens"].dtype == np.int32 and batch["tokens"].shape == (6, 5) and batch["label"].shape == (6,)
    matches = [np.flatnonzero((token_set.tokens == row).all(1)) for row in batch["tokens"]]
    assert all(token_set.labels[m[0]] == label for m, label in zip(matches, batch["label"]))
  again = tokens_lib.token_batches(token_set, batch_size=6, seed=5)
  np.testing.assert_array_equal(next(again)["tokens"], epoch[0]["tokens"])
  other = tokens_lib.token_batches(token_set, batch_size=6, seed=6)
  assert not np.array_equal(next(other)["tokens"], epoch[0]["tokens"])


def test_stream_state_resumes_at_the_same_batch():
  token_set = _token_set(n=24)
  stream = tokens_lib.token_batches(token_set, batch_size=4, seed=1)
  for _ in range(7):  # into the second epoch
    next(stream)
  state = stream.get_state()
  expected = [next(stream)["tokens"] for _ in range(3)]
  resumed = tokens_lib.token_batches(token_set, batch_size=4, seed=1)
  resumed.set_state(state)
  for batch in expected:
    np.testing.assert_array_equal(next(resumed)["tokens"], batch)


def test_stream_rejects_fewer_sequences_than_a_global_batch():
  with pytest.raises(ValueError, match="at least that many"):
    tokens_lib.token_batches(_token_set(n=10), batch_size=4, seed=0, shard_count=3)
