"""The training tasks (`jaxtok.train.task.Task`): image tokenizers and token generators."""
