import numpy as np
import pytest

from jaxtok.metrics import token_classifier


def _loop_log_posterior(tokens, labels, num_classes, vocab_size, smoothing, sequence):
  """log p(c) + sum_p log p(token_p | c, p) by counting, one class and position at a time."""
  scores = []
  for label in range(num_classes):
    mine = tokens.reshape(len(tokens), -1)[labels == label]
    score = np.log(len(mine) / len(tokens)) if len(mine) else -np.inf
    for position, token in enumerate(sequence.reshape(-1)):
      count = np.sum(mine[:, position] == token)
      score += np.log((count + smoothing) / (len(mine) + smoothing * vocab_size))
    scores.append(score)
  return np.array(scores)


@pytest.mark.parametrize("shape", [(5,), (3, 2)])
def test_log_posteriors_against_counting_oracle(shape):
  rng = np.random.default_rng(0)
  tokens, labels = rng.integers(0, 6, (40, *shape)), rng.integers(0, 3, 40)
  labels[labels == 2] = 1  # class 2 has no training sequence
  classifier = token_classifier.fit(tokens, labels, num_classes=3, vocab_size=6, smoothing=0.3)
  queries = rng.integers(0, 6, (7, *shape))
  expected = np.stack([_loop_log_posterior(tokens, labels, 3, 6, 0.3, query) for query in queries])
  np.testing.assert_allclose(token_classifier.log_posteriors(classifier, queries), expected, rtol=1e-12)
  assert np.all(np.isneginf(expected[:, 2]))


def test_accuracy_separates_classes_with_different_token_distributions():
  """Class c draws its tokens from ids [4c, 4c + 4): held-out sequences are all recognised; shuffled labels score
  near chance."""
  rng = np.random.default_rng(1)
  def sequences(count):
    labels = rng.integers(0, 4, count)
    return labels[:, None] * 4 + rng.integers(0, 4, (count, 8)), labels
  classifier = token_classifier.fit(*sequences(400), num_classes=4, vocab_size=16)
  held_out, labels = sequences(200)
  assert token_classifier.accuracy(classifier, held_out, labels) == 1.0
  assert token_classifier.accuracy(classifier, held_out, rng.permutation(labels)) < 0.45


def test_bad_inputs_raise_with_the_values():
  tokens, labels = np.zeros((4, 3), np.int32), np.array([0, 1, 0, 1])
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got \[0, 5\]"):
    token_classifier.fit(tokens, np.array([0, 1, 5, 1]), num_classes=2, vocab_size=4)
  with pytest.raises(ValueError, match=r"labels must be integers \[4\]"):
    token_classifier.fit(tokens, labels[:3], num_classes=2, vocab_size=4)
  with pytest.raises(ValueError, match="smoothing must be positive"):
    token_classifier.fit(tokens, labels, num_classes=2, vocab_size=4, smoothing=0)
  classifier = token_classifier.fit(tokens, labels, num_classes=2, vocab_size=4)
  with pytest.raises(ValueError, match=r"takes 3 token ids in \[0, 4\) per sequence, got 2 in \[0, 0\]"):
    token_classifier.log_posteriors(classifier, np.zeros((2, 2), np.int32))
  with pytest.raises(ValueError, match=r"got 3 in \[9, 9\]"):
    token_classifier.accuracy(classifier, np.full((4, 3), 9), labels)


def test_fits_in_memory():
  assert token_classifier.fits_in_memory(12, 32, 1024)
  assert not token_classifier.fits_in_memory(1000, 256, 16384)
