"""Official checkpoints -> jaxtok models and variables. No torch import at module level: torch is needed only to
read `.bin` / `.pt` files (`pip install 'jaxtok[torch]'`); `.safetensors` and `.npz` need nothing."""
from jaxtok.convert.state_dict import load_state_dict, read_safetensors
from jaxtok.convert.llamagen_gpt import llamagen_gpt_from_official
from jaxtok.convert.llamagen_vq import llamagen_vq_from_official
