"""Training: the loop, checkpoints, one entry that trains and evaluates a configuration and stores
its record, distributed data parallel, and submission to a cluster (submitit)."""
