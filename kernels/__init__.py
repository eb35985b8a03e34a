"""Pallas kernels beside their XLA references, installed as `jaxtok.kernels`.

This folder is shipped inside the jaxtok namespace (see setup.py): import it as `jaxtok.kernels`, never as
`kernels`. Each kernel lives in its own subpackage with `reference.py` (XLA, also the CPU path), backend files and an
`api.py` whose single function takes `implementation=None | 'xla' | ...`.
"""
