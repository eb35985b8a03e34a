"""PSNR-vs-tokens curve of a flexible TiTok: values against direct prefix reconstructions, JSON and PNG written."""
import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.metrics import token_curve
from jaxtok.tokenizers import titok


def test_curve_matches_direct_prefix_psnr(tmp_path):
  model = titok.TiTok(image_size=8, patch_size=4, num_latent_tokens=4, token_dim=3, encoder_size="micro",
                      decoder_size="micro", quantizer={"name": "fsq", "levels": (5, 5, 5)},
                      decoder_output="pixels", legacy_token_projection=False, latent_attention="causal",
                      token_dropout="nested_dropout")
  rng = np.random.default_rng(0)
  batches = [{"image": rng.uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)} for _ in range(2)]
  variables = model.init(jax.random.PRNGKey(0), jnp.asarray(batches[0]["image"]))
  params, model_state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
  curve = token_curve.quality_vs_tokens(model, params, model_state, batches)
  assert sorted(curve) == [1, 2, 4]
  for k in curve:
    psnr = []
    for batch in batches:
      reconstruction, _ = model.apply(variables, batch["image"], num_tokens=k)
      error = np.mean((np.asarray(reconstruction, np.float64) - batch["image"])**2, axis=(1, 2, 3))
      psnr.append(10 * np.log10(4.0 / error))
    np.testing.assert_allclose(curve[k], np.mean(np.concatenate(psnr)), rtol=1e-4)
  token_curve.save_token_curve(tmp_path, curve, baseline_psnr=10.0)
  record = json.loads((tmp_path / "token_curve.json").read_text())
  assert record["num_tokens"] == [1, 2, 4] and record["psnr"] == [curve[1], curve[2], curve[4]]
  assert (tmp_path / "token_curve.png").read_bytes()[:4] == b"\x89PNG"
