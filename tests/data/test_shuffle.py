"""EpochShuffle: every epoch a seeded permutation of the whole source, random access, checkpointable by position."""
import grain
import numpy as np
import pytest

from jaxtok.data import shuffle


@pytest.mark.parametrize("length", [1, 3, 9, 1000])
def test_each_epoch_visits_every_item_once(length):
  dataset = shuffle.EpochShuffle(grain.MapDataset.range(length), seed=5)
  for epoch in range(3):
    items = [dataset[epoch * length + position] for position in range(length)]
    assert sorted(items) == list(range(length))


def test_order_is_a_function_of_seed_and_epoch():
  def epochs(seed):
    dataset = shuffle.EpochShuffle(grain.MapDataset.range(50), seed=seed)
    return [[dataset[epoch * 50 + i] for i in range(50)] for epoch in range(2)]

  first, again, other = epochs(0), epochs(0), epochs(1)
  assert first == again
  assert first[0] != first[1], "each epoch must reshuffle"
  assert first[0] != other[0], "the seed must matter"
  expected = np.random.default_rng([0, 1]).permutation(50).tolist()
  assert first[1] == expected


def test_random_access_matches_sequential_reads():
  dataset = shuffle.EpochShuffle(grain.MapDataset.range(7), seed=2)
  sequential = [dataset[i] for i in range(30)]
  assert [dataset[i] for i in reversed(range(30))] == sequential[::-1]


def test_an_iterator_resumes_from_its_state():
  stream = shuffle.EpochShuffle(grain.MapDataset.range(5), seed=3).to_iter_dataset().batch(3)
  iterator = iter(stream)
  for _ in range(4):
    next(iterator)
  state = iterator.get_state()
  expected = [next(iterator).tolist() for _ in range(3)]
  resumed = iter(stream)
  resumed.set_state(state)
  assert [next(resumed).tolist() for _ in range(3)] == expected


@pytest.mark.parametrize("parent, seed, message", [
    (grain.MapDataset.range(0), 0, "non-empty"),
    (grain.MapDataset.range(3).repeat(), 0, "finite"),
    (grain.MapDataset.range(3), -1, "seed must be >= 0"),
])
def test_bad_arguments_are_rejected(parent, seed, message):
  with pytest.raises(ValueError, match=message):
    shuffle.EpochShuffle(parent, seed)
