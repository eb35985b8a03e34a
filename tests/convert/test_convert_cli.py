"""`python -m jaxtok.convert`: a checkpoint file in, a self-describing `.npz` out that `load_converted` rebuilds into
the model and variables that reproduce the official logits; a new family is one `OFFICIAL` entry."""
import functools
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.convert import __main__ as cli
from jaxtok.convert import converted
from jaxtok.convert import llamagen_gpt

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official" / "llamagen_gpt_c2i.npz"


def test_convert_writes_a_model_file_that_reproduces_the_official_logits(tmp_path, monkeypatch):
  with np.load(FIXTURE) as data:
    official = {name: data[name] for name in data.files}
  checkpoint = tmp_path / "tiny.npz"
  np.savez(checkpoint, **{name[len("state/"):]: value for name, value in official.items()
                          if name.startswith("state/")})
  tiny = functools.partial(llamagen_gpt.llamagen_gpt_from_official, model_name="GPT-B", sequence_length=16, width=32,
                           depth=2, num_heads=2, multiple_of=32)
  monkeypatch.setitem(cli.OFFICIAL, "llamagen_tiny", cli.Official(tiny, "tests/fixtures/official"))
  cli.convert_to_file("llamagen_tiny", str(checkpoint), str(tmp_path / "out.npz"))
  model, variables = converted.load_converted(tmp_path / "out.npz")
  assert (model.width, model.depth, model.sequence_length, model.num_classes) == (32, 2, 16, 10)
  logits = jax.jit(model.apply)(variables, jnp.asarray(official["tokens"], jnp.int32),
                                jnp.asarray(official["conditions"], jnp.int32))
  reference = official["teacher_forced_logits"]
  np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())


def test_list_and_bad_names():
  listed = cli.listing()
  assert all(name in listed for name in ("llamagen_c2i_B_256", "llamagen_t2i_XL_512", "llamagen_vq_16"))
  with pytest.raises(ValueError, match="--official must be one of"):
    cli.convert_to_file("llamagen_c2i_Z", "missing.pt", "out.npz")


def test_module_runs_as_a_command():
  result = subprocess.run([sys.executable, "-m", "jaxtok.convert", "--list"], capture_output=True, text=True,
                          check=True)
  assert "llamagen_c2i_3B_384" in result.stdout


def test_a_model_file_naming_a_foreign_module_is_refused(tmp_path):
  path = tmp_path / "foreign.npz"
  np.savez(path, **{converted.MODEL_KEY: np.asarray('{"class": "os:system", "fields": {}}')})
  with pytest.raises(ValueError, match="only jaxtok modules"):
    converted.load_converted(path)
