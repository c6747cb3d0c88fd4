"""Training: objectives, the method protocol, learners, the trainer, checkpoints, data-parallel runs and `fit`."""
