"""Run files: checkpoints, run folders and the device choice.

They sit below training and sampling alike, so that sampling, export and evaluation
read a run without loading the training loop.
"""
