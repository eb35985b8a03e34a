"""Tree verification for speculative decoding: the target scores a whole tree of drafts in one call.

SpecInfer (Miao et al. 2024, "SpecInfer: Accelerating Generative LLM Serving with Tree-based Speculative Inference
and Verification"): the draft model fills a static token tree, siblings drawn independently from the draft's
distribution q at their parent; the target scores every node in one pass under a tree attention mask (each node sees
the prefix and its ancestors, `sparse_attention.mask.TreeMask`); verification walks from the root: child c is
accepted with probability min(1, p(c) / q(c)), and after each rejected sibling p becomes normalize(max(0, p - q))
before the next one is tried (multi-step speculative sampling). When no child is accepted the next token is drawn from
the current p (a bonus token from p at a leaf). The output distribution is EXACTLY the target's.

Both models must be `TokenModel`s with `tree_logits_fn` and `keep_path` (jaxtok's `CausalTokenTransformer` and
`markov.markov_model` provide them). Each round costs depth + 1 draft calls over the tree and one target call.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.decoders import ar_sampling
from jaxtok.decoders import speculative


def tree_depths(parents: tuple[int, ...]) -> np.ndarray:
  """Depth of each node of a token tree (0 for children of the prefix), `[nodes]` int32."""
  depths = np.zeros(len(parents), np.int32)
  for node, parent in enumerate(parents):
    depths[node] = depths[parent] + 1 if parent >= 0 else 0
  return depths


def check_tree(parents: tuple[int, ...]):
  """ValueError unless `parents` is a tree rooted at node 0: parents[0] == -1, others in [0, node)."""
  if not parents or parents[0] != -1 or any(not 0 <= parent < node for node, parent in enumerate(parents) if node):
    raise ValueError(f"parents must describe a tree rooted at node 0 (parents[0] = -1, then 0 <= parents[i] < i), "
                     f"got {parents}.")


def _children_table(parents: tuple[int, ...]) -> np.ndarray:
  """`[nodes, max_children]` int32 children of each node in order, padded with -1."""
  children = [[child for child, parent in enumerate(parents) if parent == node] for node in range(len(parents))]
  width = max(1, max(len(c) for c in children))
  return np.array([c + [-1] * (width - len(c)) for c in children], np.int32)


def verify_tree(p: jax.Array, q: jax.Array, tokens: jax.Array, uniforms: jax.Array, children: np.ndarray,
                depth: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Multi-step speculative sampling down one example's tree.

  Args:
    p, q: `[nodes, vocab]` target and draft distributions of the token after each node.
    tokens: `[nodes]` int32 (node 0, the root, is the last decided token).
    uniforms: `[depth, max_children]` in [0, 1).
    children: static `[nodes, max_children]` table (`_children_table`).
    depth: static depth of the tree.

  Returns:
    path `[depth]` int32 accepted nodes (valid up to count), count int32, and the distribution `[vocab]` of the token
    that follows them.
  """
  children = jnp.asarray(children)

  def level(carry, d):
    node, distribution, alive, path, count = carry

    def try_child(state, slot):
      moved, distribution, chosen = state
      child = children[node, slot]
      valid = alive & ~moved & (child >= 0)
      token = tokens[jnp.maximum(child, 0)]
      accepted = valid & (uniforms[d, slot] < speculative.acceptance_probability(distribution[token], q[node, token]))
      rejected_distribution = speculative.residual_distribution(distribution, q[node])
      distribution = jnp.where(valid & ~accepted, rejected_distribution, distribution)
      return (moved | accepted, distribution, jnp.where(accepted, child, chosen)), None

    (moved, distribution, chosen), _ = jax.lax.scan(try_child, (False, distribution, node),
                                                    jnp.arange(children.shape[1]))
    distribution = jnp.where(moved, p[chosen], distribution)
    return (chosen, distribution, alive & moved, path.at[d].set(chosen), count + moved), None

  initial = (jnp.int32(0), p[0], jnp.bool_(True), jnp.zeros((depth,), jnp.int32), jnp.int32(0))
  (_, distribution, _, path, count), _ = jax.lax.scan(level, initial, jnp.arange(depth))
  return path, count, distribution


@functools.partial(jax.jit, static_argnames=("sequence_length", "parents", "temperature", "top_k", "top_p"))
def _tree(target, draft, key, class_labels, *, sequence_length, parents, temperature, top_k, top_p):
  batch, nodes = class_labels.shape[0], len(parents)
  depths = tree_depths(parents)
  depth = int(depths.max())
  children = _children_table(parents)
  keys = ar_sampling.example_keys(key, batch)
  to_distribution = functools.partial(ar_sampling.distribution, temperature=temperature, top_k=top_k, top_p=top_p)
  capacity = sequence_length + 2 * nodes
  target_logits, target_cache = target.init(target.params, class_labels, capacity)
  _, draft_cache = draft.init(draft.params, class_labels, capacity)
  first = ar_sampling.draw(ar_sampling.step_keys(keys, 0), to_distribution(target_logits))
  zeros = jnp.zeros((batch,), jnp.int32)
  state = dict(tokens=jnp.zeros((batch, capacity), jnp.int32).at[:, 0].set(first), num_tokens=zeros + 1, last=first,
               target_cache=target_cache, draft_cache=draft_cache, accepted=zeros, proposed=zeros,
               round=jnp.int32(0))
  parent_index = np.maximum(np.asarray(parents), 0)

  def draft_tree(last, cache, round_keys):
    """Fills the tree level by level, siblings i.i.d. from q at their parent; a last pass caches the finished tree.
    Returns tokens `[b, nodes]`, q `[b, nodes, vocab]` (as drawn from, at every internal node), the draft cache."""
    tokens = jnp.zeros((batch, nodes), jnp.int32).at[:, 0].set(last)
    q_drawn = None
    for level in range(1, depth + 2):
      logits, grown = draft.tree_logits_fn(draft.params, tokens, parents, cache)
      q = to_distribution(logits)
      q_drawn = q if q_drawn is None else jnp.where(jnp.asarray(depths == level - 1)[None, :, None], q, q_drawn)
      for node in np.flatnonzero(depths == level):
        node_keys = ar_sampling.step_keys(round_keys, int(node))
        tokens = tokens.at[:, node].set(ar_sampling.draw(node_keys, q[:, parent_index[node]]))
    return tokens, q_drawn, grown

  def body(state):
    active = state["num_tokens"] < sequence_length
    round_keys = ar_sampling.step_keys(keys, state["round"] + 1)
    fold = lambda salt: jax.vmap(jax.random.fold_in, (0, None))(round_keys, salt)
    tokens, q, draft_cache = draft_tree(state["last"], state["draft_cache"], fold(0))
    logits, target_cache = target.tree_logits_fn(target.params, tokens, parents, state["target_cache"])
    uniforms = jax.vmap(lambda k: jax.random.uniform(k, (depth, children.shape[1])))(fold(1))
    verify = functools.partial(verify_tree, children=children, depth=depth)
    path, count, distribution = jax.vmap(verify)(to_distribution(logits), q, tokens, uniforms)
    new_token = ar_sampling.draw(fold(2), distribution)
    path_tokens = jnp.take_along_axis(tokens, path, axis=1)
    window = jnp.where(jnp.arange(depth + 1)[None] == count[:, None], new_token[:, None],
                       jnp.concatenate([path_tokens, path_tokens[:, :1]], 1))
    kept_path = jnp.concatenate([jnp.zeros((batch, 1), jnp.int32), path], 1)  # the root (pending token), then path
    start = state["num_tokens"] - 1
    kept = jnp.where(active, count + 1, 0)
    keep = lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (jnp.ndim(old) - 1)), new, old)
    return dict(tokens=keep(ar_sampling.write_window(state["tokens"], window, state["num_tokens"]), state["tokens"]),
                num_tokens=keep(state["num_tokens"] + count + 1, state["num_tokens"]),
                last=keep(new_token, state["last"]),
                target_cache=target.keep_path(target_cache, start, kept_path, kept),
                draft_cache=draft.keep_path(draft_cache, start, kept_path, kept),
                accepted=state["accepted"] + keep(count, 0), proposed=state["proposed"] + keep(depth, 0),
                round=state["round"] + 1)

  state = jax.lax.while_loop(lambda s: jnp.any(s["num_tokens"] < sequence_length), body, state)
  return ar_sampling.SamplerOutput(state["tokens"][:, :sequence_length], state["round"] + 1,
                                   state["round"] * (depth + 1) + 1, state["accepted"], state["proposed"])


def tree_sample(target: ar_sampling.TokenModel, draft: ar_sampling.TokenModel, key: jax.Array,
                class_labels: jax.Array, *, sequence_length: int, parents: tuple[int, ...] = (-1, 0, 0, 1, 2, 3, 4),
                temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> ar_sampling.SamplerOutput:
  """Lossless speculative sampling with tree verification: exactly the target's distribution.

  Args:
    target, draft: `TokenModel`s with `tree_logits_fn` and `keep_path`, over the same vocabulary.
    key, class_labels, sequence_length, temperature, top_k, top_p: as in `ar_sampling.sample` (temperature 0: the
      target's greedy sequence).
    parents: the static tree, `parents[i]` the parent of node i; node 0 (parent -1) is the root, the last decided
      token, and the other nodes are drafts. The default: two chains of 3 drafts branching at the root.

  Returns:
    `SamplerOutput`; `proposed` counts the tree depth per round (the longest acceptable path), so the acceptance rate
    is accepted path length over depth.
  """
  ar_sampling.check_sampling_arguments(class_labels, sequence_length=sequence_length, temperature=temperature,
                                       top_k=top_k, top_p=top_p)
  parents = tuple(int(parent) for parent in parents)
  check_tree(parents)
  if len(parents) < 2:
    raise ValueError(f"the tree needs at least one draft node besides the root, got parents={parents}.")
  for name, model in (("target", target), ("draft", draft)):
    if model.tree_logits_fn is None or model.keep_path is None:
      raise ValueError(f"the {name} TokenModel needs tree_logits_fn and keep_path for tree verification.")
  speculative.check_same_vocabulary(target, draft, class_labels, sequence_length)
  return ar_sampling.timed(_tree, target, draft, key, class_labels, sequence_length=sequence_length, parents=parents,
                           temperature=float(temperature), top_k=top_k, top_p=float(top_p))
