"""Training loops, checkpoints and metrics; the models themselves live in `models/`."""
