"""The proof of concept (Appendix B, Table 6): natural and robust training of the paper's models on
MNIST, SVHN and CIFAR-10 at a small budget."""
from __future__ import annotations

from rll.config import TrainConfig
from rll.experiments.tables import _what
from rll.paper import paper_reference

#: Datasets of the paper's proof-of-concept table (Table 6), in its row order.
PROOF_OF_CONCEPT_DATASETS = ("mnist", "svhn", "cifar10")


def proof_of_concept_config(dataset: str, *, train_with_test: bool = True, epochs=None, seed: int = 0,
                            fidelity: str = "paper", train_size=None, test_size=None,
                            test_split: str = "test", lr=None, attack: str = "pgd"):
    """Appendix B's proof-of-concept run for ``dataset``: RST(λ=2) trained on the training
    set *and the test set* it is evaluated on, with Table 7's setup (network, optimiser,
    batch size, epochs, ε, attack step size, initial learning rate).

    Table 7's learning rate is the released code's, on a summed loss; in ``fidelity="paper"``
    (mean loss) SGD's rate is multiplied by the batch size, as for every run
    (:mod:`rll.training.run`), and Adam's is used as is.  Table 7 gives no momentum and no decay
    schedule: SGD keeps the dataset's momentum (MNIST 0.9) and every run its dataset's
    milestones scaled to the epochs.  ``train_with_test=False`` is the control: the same
    setup without access to the test set.  ``epochs``/``lr`` override Table 7's."""
    if dataset not in PROOF_OF_CONCEPT_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for the proof of concept (Table 6); "
                         f"valid choices: {', '.join(PROOF_OF_CONCEPT_DATASETS)}")
    setup = paper_reference()["table7"][dataset]
    row = paper_reference()["table6"]
    optimizer, batch = setup["optimizer"].lower(), setup["batch_size"]
    if lr is None:
        lr = setup["initial_lr"] * (batch if fidelity == "paper" and optimizer == "sgd" else 1)
    return TrainConfig(dataset=dataset, model=setup["network"], method=row["method"],
                       params={**row["params"], "step": setup["step_size"]}, epochs=epochs or setup["epochs"],
                       lr=lr, optimizer=optimizer, batch_size=batch, eps=setup["eps"], seed=int(seed),
                       fidelity=fidelity, attack=attack, train_size=train_size, test_size=test_size,
                       test_split=test_split, train_with_test=train_with_test)


def proof_of_concept_configs(*, datasets=None, control: bool = True, seeds=(0,), **kwargs) -> list:
    """The runs of the proof-of-concept notebook: per dataset and seed, the run with access to
    the test set and (``control``) the same run without it."""
    out = []
    for dataset in datasets or PROOF_OF_CONCEPT_DATASETS:
        for seed in seeds:
            for with_test in (True, False) if control else (True,):
                out.append(proof_of_concept_config(dataset, train_with_test=with_test, seed=seed, **kwargs))
    return out


def proof_of_concept_paper_budget(config):
    """Table 7's budget for a proof-of-concept ``config`` (for :func:`provenance_lines`)."""
    return proof_of_concept_config(config.dataset, train_with_test=config.train_with_test,
                                   fidelity=config.fidelity)


def is_proof_of_concept_run(config: dict) -> bool:
    """Whether a stored configuration is a proof-of-concept run (with the test set or the
    control), at any budget (:data:`BUDGET_FIELDS`)."""
    if config["dataset"] not in PROOF_OF_CONCEPT_DATASETS:
        return False
    ref = proof_of_concept_config(config["dataset"], train_with_test=config.get("train_with_test", False),
                                  seed=config["seed"], fidelity=config["fidelity"], attack=config["attack"],
                                  test_split=config["test_split"])
    return _what(ref.canonical()) == _what(config)
