"""The paper's experiments as configurations and runs: Section 3's separation, the theorems'
classifiers, the staircase, the Section 5 tables (which runs make which table), sweeps that run
them, and the proof of concept.  Import the module you need (``from rll.experiments import
tables``); nothing is imported here, so reading the registry never pulls in the training code."""
