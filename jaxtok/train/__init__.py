"""Training: one `Run` (run.py: mesh, sharded state, jitted step, checkpoints, the loop, logs) driven by a `Task`
(task.py; tasks/tokenizer.py and tasks/generator.py say what differs), and `restore_for_inference` (inference.py),
which evaluation, sampling and token extraction use to load a checkpoint's weights."""
