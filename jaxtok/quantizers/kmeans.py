"""k-means++ seeding and Lloyd iterations for codebook initialisation, as plain jnp over the whole (global) batch.

Under jit with a batch sharded over a mesh, every reduction here is a global one (GSPMD), and the random draws come
from one key, so the centroids do not depend on the number of devices.
"""
import jax
import jax.numpy as jnp

from jaxtok.kernels.codebook_lookup import codebook_lookup
from jaxtok.nn.normalization import l2_normalize


def kmeans_plus_plus(key: jax.Array, points: jax.Array, num_centroids: int) -> jax.Array:
  """Arthur & Vassilvitskii seeding. points: `[N, D]` float32 -> centroids `[num_centroids, D]`.

  Each new centroid is a point drawn with probability proportional to its squared distance to the nearest centroid
  so far (uniformly once every point coincides with a centroid, e.g. when N < num_centroids).
  """
  first_key, rest_key = jax.random.split(key)
  first = points[jax.random.randint(first_key, (), 0, points.shape[0])]
  centroids = jnp.zeros((num_centroids, points.shape[1]), points.dtype).at[0].set(first)
  nearest = jnp.sum((points - first)**2, axis=-1)

  def add_centroid(k, carry):
    centroids, nearest = carry
    logits = jnp.log(jnp.maximum(nearest, 0.0) + 1e-30)
    chosen = points[jax.random.categorical(jax.random.fold_in(rest_key, k), logits)]
    nearest = jnp.minimum(nearest, jnp.sum((points - chosen)**2, axis=-1))
    return centroids.at[k].set(chosen), nearest

  centroids, _ = jax.lax.fori_loop(1, num_centroids, add_centroid, (centroids, nearest))
  return centroids


def kmeans(key: jax.Array, points: jax.Array, num_centroids: int, *, iterations: int, distance: str = "l2",
           lookup_impl: str | None = None) -> jax.Array:
  """k-means++ seeding then `iterations` Lloyd steps. points: `[N, D]` -> centroids `[num_centroids, D]` float32.

  With distance 'cosine' the points and centroids are l2-normalised (spherical k-means). A centroid that loses all
  its points keeps its previous position.
  """
  points = jax.lax.stop_gradient(points.astype(jnp.float32))
  if distance == "cosine":
    points = l2_normalize(points)
  centroids = kmeans_plus_plus(key, points, num_centroids)

  def lloyd_step(_, centroids):
    assignment = codebook_lookup(points, centroids, distance=distance, implementation=lookup_impl)
    sums = jax.ops.segment_sum(points, assignment, num_segments=num_centroids)
    counts = jax.ops.segment_sum(jnp.ones_like(assignment, jnp.float32), assignment, num_segments=num_centroids)
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    means = l2_normalize(means) if distance == "cosine" else means
    return jnp.where(counts[:, None] > 0, means, centroids)

  return jax.lax.fori_loop(0, iterations, lloyd_step, centroids)
