"""The README's "Use jaxtok in your own JAX code" snippets run as written, and the package exports they rely on."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Use jaxtok in your own JAX code"


def _snippets() -> list[str]:
  text = README.read_text()
  assert SECTION in text, f"the README lost its section {SECTION!r}"
  section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_shows_a_quantizer_a_tokenizer_and_a_sampler():
  snippets = _snippets()
  assert len(snippets) == 3
  assert "quantizers." in snippets[0] and "TiTok(" in snippets[1] and "maskgit_sample(" in snippets[2]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(3), ids=["quantizer", "tokenizer", "sampler"])
def test_snippet_runs_in_a_fresh_interpreter(index, tmp_path, compile_fast_flag):
  """Each snippet alone, as a user pastes it: a new process, outside the repository, with only jaxtok installed."""
  result = subprocess.run([sys.executable, "-c", _snippets()[index]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
                                            "XLA_FLAGS": compile_fast_flag,
                                            "JAX_COMPILATION_CACHE_DIR": os.environ["JAX_COMPILATION_CACHE_DIR"]})
  assert result.returncode == 0, result.stderr[-3000:]


def test_decoders_export_their_models_and_samplers():
  from jaxtok import decoders  # pylint: disable=g-import-not-at-top
  for name in ("MaskedTokenTransformer", "CausalTokenTransformer", "TokenModel", "maskgit_sample", "remasking_sample",
               "sample", "speculative_sample", "tree_sample", "as_logits_fn"):
    assert callable(getattr(decoders, name)), name
  assert set(decoders.__all__) <= set(dir(decoders))
