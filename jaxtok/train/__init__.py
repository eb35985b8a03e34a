"""Training: state, optimizer, the pure train step, evaluation, checkpoints and the loop that ties them together."""
