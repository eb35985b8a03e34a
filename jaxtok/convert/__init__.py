"""Official checkpoints -> jaxtok models and variables. No torch import at module level: torch is needed only to
read `.bin` / `.pt` files (`pip install 'jaxtok[torch]'`); `.safetensors` and `.npz` need nothing.

- `load_state_dict(path)`: a checkpoint file as `{name: np.ndarray}`.
- `titok_from_official(state_dict, config)`, `vqgan_from_official(state_dict)`: (model, variables) computing what
  bytedance/1d-tokenizer's TiTok and MaskGIT-VQGAN compute (`titok.py`, `vqgan.py`).
- `maskgit_from_official(state_dict, config)` (`jaxtok.convert.maskgit`): 1d-tokenizer's MaskGIT generators.
- `llamagen_vq_from_official`, `llamagen_gpt_from_official`: FoundationVision/LlamaGen's VQ tokenizers and GPTs.
- `python -m jaxtok.convert --official=titok_l32 --checkpoint=PATH --workdir=DIR`: a checkpoint + config that
  `python -m jaxtok.evaluate` reads (`__main__.py`).
"""
from jaxtok.convert.state_dict import load_state_dict, read_safetensors
from jaxtok.convert.llamagen_gpt import llamagen_gpt_from_official
from jaxtok.convert.llamagen_vq import llamagen_vq_from_official
from jaxtok.convert.tensors import ConversionError
from jaxtok.convert.titok import titok_from_official
from jaxtok.convert.vqgan import vqgan_from_official
