"""Exact sequence distributions of small Markov chains (`jaxtok.decoders.markov`) and a chi-square test against them,
shared by the exactness tests of the speculative samplers."""
import itertools

import numpy as np
import scipy.stats

VOCAB, LENGTH, NUM_SAMPLES, CLASS = 3, 3, 12000, 1
_RNG = np.random.default_rng(7)
TARGET_LOGITS = (_RNG.normal(size=(2, VOCAB)) * 1.5, _RNG.normal(size=(LENGTH, VOCAB, VOCAB)) * 1.5)
DRAFT_LOGITS = (_RNG.normal(size=(2, VOCAB)), _RNG.normal(size=(LENGTH, VOCAB, VOCAB)))


def softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def exact_sequence_probabilities(initial_logits, transition_logits) -> np.ndarray:
  """`[VOCAB ** LENGTH]` probabilities of every sequence (lexicographic order) under the Markov chain of CLASS."""
  initial, transitions = softmax(initial_logits[CLASS]), softmax(transition_logits)
  return np.array([initial[s[0]] * np.prod([transitions[i, s[i], s[i + 1]] for i in range(LENGTH - 1)])
                   for s in itertools.product(range(VOCAB), repeat=LENGTH)])


def chi_square_p_value(tokens, expected) -> float:
  """p-value of the counts of the sampled sequences `[n, length]` (of VOCAB tokens; LENGTH for the chains here)
  against the probabilities `expected` of every sequence in lexicographic order; 0 if a sequence of probability 0
  was drawn (the test then runs over the support only)."""
  length = np.shape(tokens)[1]
  codes = np.asarray(tokens) @ (VOCAB ** np.arange(length - 1, -1, -1))
  counts = np.bincount(codes, minlength=VOCAB**length)
  support = expected > 0
  if np.any(counts[~support]):
    return 0.0
  return scipy.stats.chisquare(counts[support], expected[support] / expected[support].sum() * len(codes)).pvalue
