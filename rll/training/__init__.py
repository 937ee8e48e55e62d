"""Training: the step and the run's parts (``loop``), per-epoch checkpoints (``checkpoint``), the
one entry that trains, evaluates and stores a configuration (``run``), trained models out of
their checkpoints (``packing``), distributed data parallel, submission to a cluster (submitit)
and RobustBench export."""
