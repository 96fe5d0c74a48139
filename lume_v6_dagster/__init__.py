"""LUME Music V6 retrain pipeline: capture -> pairs -> training -> export -> acceptance."""
