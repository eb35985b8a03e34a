"""PyTorch layer layouts -> jaxtok's: Linear, Conv2d, LayerNorm / GroupNorm, nn.MultiheadAttention, and the
pre-norm `ResidualAttentionBlock` of open_clip (TiTok's ViT), each read from `OfficialTensors` by module prefix.

Each function returns `{jaxtok path below the layer: array}`; the caller places them under the layer's path.
"""
import numpy as np

from jaxtok.convert.tensors import OfficialTensors


def linear(tensors: OfficialTensors, prefix: str, in_features: int, out_features: int,
           bias: bool = True) -> dict[str, np.ndarray]:
  """`nn.Linear` (weight `[out, in]`) -> a Dense kernel `[in, out]` (+ bias)."""
  out = {"kernel": tensors.take(f"{prefix}.weight", (out_features, in_features)).T}
  if bias:
    out["bias"] = tensors.take(f"{prefix}.bias", (out_features,))
  return out


def conv1x1_as_dense(tensors: OfficialTensors, prefix: str, in_features: int,
                     out_features: int) -> dict[str, np.ndarray]:
  """A 1x1 `nn.Conv2d` (weight `[out, in, 1, 1]`) applied per position -> a Dense kernel `[in, out]` and bias."""
  kernel = tensors.take(f"{prefix}.weight", (out_features, in_features, 1, 1))[:, :, 0, 0].T
  return {"kernel": kernel, "bias": tensors.take(f"{prefix}.bias", (out_features,))}


def conv2d(tensors: OfficialTensors, prefix: str, in_channels: int, out_channels: int, kernel_size: int,
           bias: bool = True) -> dict[str, np.ndarray]:
  """`nn.Conv2d` (weight `[out, in, kh, kw]`) -> a flax Conv kernel `[kh, kw, in, out]` (+ bias)."""
  weight = tensors.take(f"{prefix}.weight", (out_channels, in_channels, kernel_size, kernel_size))
  out = {"kernel": weight.transpose(2, 3, 1, 0)}
  if bias:
    out["bias"] = tensors.take(f"{prefix}.bias", (out_channels,))
  return out


def norm(tensors: OfficialTensors, prefix: str, channels: int) -> dict[str, np.ndarray]:
  """`nn.LayerNorm` / `nn.GroupNorm` affine weight and bias -> flax's scale and bias."""
  return {"scale": tensors.take(f"{prefix}.weight", (channels,)), "bias": tensors.take(f"{prefix}.bias", (channels,))}


def heads_projections(weight: np.ndarray, bias: np.ndarray | None, out_weight: np.ndarray,
                      out_bias: np.ndarray, num_heads: int) -> dict[str, dict[str, np.ndarray]]:
  """Fused q/k/v weight `[3 * width, width]` (bias `[3 * width]` or None) and an output projection `[width, width]`
  -> `jaxtok.nn.MultiHeadAttention`'s query/key/value kernels `[width, heads, head_dim]` and out `[heads, head_dim,
  width]`. Head h holds features h * head_dim ... (h + 1) * head_dim, as in PyTorch."""
  width = out_weight.shape[0]
  head_dim = width // num_heads
  params = {}
  for index, name in enumerate(("query", "key", "value")):
    rows = slice(index * width, (index + 1) * width)
    params[name] = {"kernel": weight[rows].T.reshape(width, num_heads, head_dim)}
    if bias is not None:
      params[name]["bias"] = bias[rows].reshape(num_heads, head_dim)
  params["out"] = {"kernel": out_weight.T.reshape(num_heads, head_dim, width), "bias": out_bias}
  return params


def multihead_attention(tensors: OfficialTensors, prefix: str, width: int,
                        num_heads: int) -> dict[str, dict[str, np.ndarray]]:
  """`torch.nn.MultiheadAttention` (in_proj_weight / in_proj_bias, out_proj) -> MultiHeadAttention parameters."""
  return heads_projections(tensors.take(f"{prefix}.in_proj_weight", (3 * width, width)),
                           tensors.take(f"{prefix}.in_proj_bias", (3 * width,)),
                           tensors.take(f"{prefix}.out_proj.weight", (width, width)),
                           tensors.take(f"{prefix}.out_proj.bias", (width,)), num_heads)


def residual_attention_block(tensors: OfficialTensors, prefix: str, width: int, num_heads: int,
                             mlp_dim: int) -> dict:
  """open_clip's `ResidualAttentionBlock` (ln_1, attn, ln_2, mlp.c_fc, mlp.c_proj) -> `jaxtok.nn.TransformerBlock`."""
  return {
      "attention_norm": norm(tensors, f"{prefix}.ln_1", width),
      "attention": multihead_attention(tensors, f"{prefix}.attn", width, num_heads),
      "mlp_norm": norm(tensors, f"{prefix}.ln_2", width),
      "mlp": {"hidden": linear(tensors, f"{prefix}.mlp.c_fc", width, mlp_dim),
              "out": linear(tensors, f"{prefix}.mlp.c_proj", mlp_dim, width)},
  }
