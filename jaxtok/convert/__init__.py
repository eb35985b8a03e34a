"""Official checkpoints -> jaxtok models and variables. No torch import at module level: torch is needed only to
read `.bin` / `.pt` files (`pip install 'jaxtok[torch]'`); `.safetensors` and `.npz` need nothing.

- `load_state_dict(path)`: a checkpoint file as `{name: np.ndarray}`.
- `titok_from_official(state_dict, config)`, `vqgan_from_official(state_dict)`: (model, variables) computing what
  bytedance/1d-tokenizer's TiTok and MaskGIT-VQGAN compute (`titok.py`, `vqgan.py`).
- `python -m jaxtok.convert --official=titok_l32 --checkpoint=PATH --workdir=DIR`: a checkpoint + config that
  `python -m jaxtok.evaluate` reads (`__main__.py`).
"""
from jaxtok.convert.state_dict import load_state_dict, read_safetensors
from jaxtok.convert.tensors import ConversionError
from jaxtok.convert.titok import titok_from_official
from jaxtok.convert.vqgan import vqgan_from_official
