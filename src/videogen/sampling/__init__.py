"""Sampling building blocks shared by the model families: schedulers, seeds, progress."""
