"""Helpers the experiment configs (`experiments/*.py`) build on, as big_vision's `configs/common.py`.

`common` assembles the runner's sections with their usual values, `models` gives each registered model's complete
field set (so every field can be overridden from the command line) with an experiment's values over the defaults.
Neither imports model or training code: configs stay plain data, checked by the runner when it starts.
"""
