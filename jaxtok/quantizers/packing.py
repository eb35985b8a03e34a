"""Binary codes <-> integer indices, the FIRST channel the MOST significant bit.

Dense indices are int32 and hold up to 31 bits. Packed indices hold any number of bits as uint32 words
`[..., ceil(bits / 32)]`: the words are the base-2^32 digits of the same integer a dense index would be, most
significant word first, so the first word holds the first `bits - 32 * (words - 1)` channels in its low bits and,
for up to 31 bits, the single packed word equals the dense index.
"""
import jax
import jax.numpy as jnp

MAX_DENSE_BITS = 31
WORD_BITS = 32


def num_words(bits: int) -> int:
  """uint32 words needed to pack `bits` bits."""
  return -(-bits // WORD_BITS)


def check_dense_bits(bits: int, quantizer: str) -> None:
  """Raises ValueError when `bits` does not fit a dense int32 index."""
  if bits > MAX_DENSE_BITS:
    raise ValueError(f"{quantizer} with {bits} bits needs packed indices (packed_indices=True): dense int32 indices "
                     f"hold at most {MAX_DENSE_BITS} bits, got {bits}.")


def _bit_weights(width: int, dtype) -> jax.Array:
  return jnp.left_shift(jnp.ones((width,), dtype), jnp.arange(width - 1, -1, -1, dtype=dtype))


def bits_to_indices(bits: jax.Array, *, packed: bool) -> jax.Array:
  """bits: `[..., d]` bool (True = 1) -> int32 `[...]` (dense, d <= 31) or uint32 `[..., ceil(d / 32)]` (packed)."""
  dim = bits.shape[-1]
  if not packed:
    check_dense_bits(dim, "bits_to_indices")
    return jnp.sum(bits.astype(jnp.int32) * _bit_weights(dim, jnp.int32), axis=-1, dtype=jnp.int32)
  words = num_words(dim)
  padding = [(0, 0)] * (bits.ndim - 1) + [(words * WORD_BITS - dim, 0)]
  padded = jnp.pad(bits.astype(jnp.uint32), padding)
  padded = jnp.reshape(padded, bits.shape[:-1] + (words, WORD_BITS))
  return jnp.sum(padded * _bit_weights(WORD_BITS, jnp.uint32), axis=-1, dtype=jnp.uint32)


def indices_to_bits(indices: jax.Array, dim: int, *, packed: bool) -> jax.Array:
  """Inverse of `bits_to_indices`: int32 `[...]` or uint32 `[..., ceil(dim / 32)]` -> bool `[..., dim]`."""
  if not packed:
    check_dense_bits(dim, "indices_to_bits")
    shifts = jnp.arange(dim - 1, -1, -1, dtype=jnp.int32)
    return (jnp.right_shift(indices.astype(jnp.int32)[..., None], shifts) & 1).astype(bool)
  words = num_words(dim)
  if indices.shape[-1:] != (words,):
    raise ValueError(f"Packed indices for {dim} bits must be [..., {words}] uint32 words, got shape {indices.shape}.")
  shifts = jnp.arange(WORD_BITS - 1, -1, -1, dtype=jnp.uint32)
  bits = jnp.right_shift(indices.astype(jnp.uint32)[..., None], shifts) & 1
  bits = jnp.reshape(bits, indices.shape[:-1] + (words * WORD_BITS,))
  return bits[..., words * WORD_BITS - dim:].astype(bool)
