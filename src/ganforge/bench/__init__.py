"""Training throughput, side by side with a faithful re-implementation of the tutorial loop."""
