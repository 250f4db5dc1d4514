"""Training the model: losses, checkpoints, run logs and the trainer."""
