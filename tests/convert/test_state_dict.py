"""load_state_dict: safetensors read without torch (fixtures written by the safetensors package), nested checkpoints,
and no pickled code ever executed."""
import pathlib
import pickle
import sys

import ml_dtypes
import numpy as np
import pytest

from jaxtok.convert import load_state_dict
from jaxtok.convert import read_safetensors

FORMATS = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "formats"


def test_safetensors_written_by_the_safetensors_package_read_exactly():
  expected = np.load(FORMATS / "tiny_expected.npz")
  tensors = load_state_dict(FORMATS / "tiny.safetensors")
  assert sorted(tensors) == sorted(set(expected.files) - {"bf16_as_float32"})
  for name, array in tensors.items():
    assert array.dtype == expected[name].dtype and array.shape == expected[name].shape, name
    np.testing.assert_array_equal(array, expected[name])


def test_bfloat16_safetensors_keep_their_dtype():
  tensors = read_safetensors(FORMATS / "bf16.safetensors")
  assert tensors["w"].dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(tensors["w"].astype(np.float32), np.load(FORMATS / "tiny_expected.npz")["bf16_as_float32"])


def test_corrupt_safetensors_header_is_a_clear_error(tmp_path):
  path = tmp_path / "bad.safetensors"
  path.write_bytes((10**9).to_bytes(8, "little") + b"{}")
  with pytest.raises(ValueError, match="header of 1000000000 bytes"):
    load_state_dict(path)
  truncated = tmp_path / "truncated.safetensors"
  truncated.write_bytes((FORMATS / "tiny.safetensors").read_bytes()[:-8])
  with pytest.raises(ValueError, match="needs .* bytes"):
    load_state_dict(truncated)


def test_npz_and_nested_keys(tmp_path):
  np.savez(tmp_path / "flat.npz", a=np.ones(2, np.float32))
  assert list(load_state_dict(tmp_path / "flat.npz")) == ["a"]
  with pytest.raises(KeyError, match="no entry 'model'"):
    load_state_dict(tmp_path / "flat.npz", key="model")


def test_object_arrays_in_npz_are_refused(tmp_path):
  np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
  with pytest.raises(ValueError, match="allow_pickle"):
    load_state_dict(tmp_path / "objects.npz")


def test_unknown_suffix_and_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="No checkpoint file"):
    load_state_dict(tmp_path / "absent.safetensors")
  (tmp_path / "weights.h5").write_bytes(b"")
  with pytest.raises(ValueError, match="Unsupported checkpoint format '.h5'"):
    load_state_dict(tmp_path / "weights.h5")


def test_torch_files_without_torch_name_the_extra(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
  with pytest.raises(ImportError, match=r"pip install 'jaxtok\[torch\]'"):
    load_state_dict(FORMATS / "nested.pt")


class _Exploit:
  def __reduce__(self):
    return (pathlib.Path.touch, (pathlib.Path(_Exploit.marker),))


def test_torch_checkpoint_nested_under_model_with_training_args():
  pytest.importorskip("torch")
  tensors = load_state_dict(FORMATS / "nested.pt")
  assert sorted(tensors) == ["norm.weight", "tok_embeddings.weight"]
  assert tensors["norm.weight"].dtype == ml_dtypes.bfloat16 and tensors["tok_embeddings.weight"].shape == (4, 3)


def test_pickled_code_is_never_executed(tmp_path):
  torch = pytest.importorskip("torch")
  _Exploit.marker = str(tmp_path / "executed")
  with open(tmp_path / "evil.pt", "wb") as file:
    pickle.dump({"model": {"w": torch.zeros(1)}, "payload": _Exploit()}, file)
  with pytest.raises(Exception, match="(?i)weights_only|unsupported global"):
    load_state_dict(tmp_path / "evil.pt")
  assert not (tmp_path / "executed").exists()
