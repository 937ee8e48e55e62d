"""The paper's Section 5 tables as configurations: the method rows, the models, the table budgets
and seeds of our plan, how a table run is evaluated, and how runs are looked up in the store.
A registry: it trains nothing and imports nothing above :mod:`rll.config`."""
from __future__ import annotations

from typing import Any, Mapping

from rll.config import TrainConfig
from rll.losses import METHOD_PARAMS, fastest_precision
from rll.metrics import EvalPlan

#: The attacks in the order the book lists them.
ATTACK_ORDER = ("pgd", "mt", "aa-apgd", "aa")


#: The attacks every seed-0 table model is evaluated with; other seeds get PGD-10.
FULL_EVALUATION = ("pgd", "mt", "aa-apgd", "aa")


#: The paper's ten method rows (Tables 2, 3, 9–13) and the dropout study's five (Tables 4, 14),
#: as method specs ``name`` or ``name(param=value)``.
PAPER_METHODS = ("natural", "gr", "llr", "at", "rst(lam=0.5)", "rst(lam=1)", "rst(lam=2)",
                 "trades(beta=1)", "trades(beta=3)", "trades(beta=6)")


DROPOUT_METHODS = ("natural", "at", "rst(lam=2)", "trades(beta=3)", "trades(beta=6)")


#: Which models each table notebook trains per dataset, and the dropout rates of Table 4.
TABLE_MODELS = {
    "table2": {"mnist": ("cnn1", "cnn2")},
    "table3": {"cifar10": ("wrn-40-10",), "resimagenet": ("resnet50",), "svhn": ("wrn-40-10",)},
    "table4": {"svhn": ("wrn-40-10",), "cifar10": ("wrn-40-10",)},
}


DROPOUT_RATE = {"svhn": 0.5, "cifar10": 0.2}


METRIC_COLUMNS = ("train_acc", "test_acc", "adv_test_acc", "test_lipschitz_released", "test_lipschitz", "gap",
                  "adv_gap")


#: Configuration fields that only set a run's budget; the rest say *what* is run.
BUDGET_FIELDS = ("epochs", "milestones", "lr", "train_size", "test_size")


def _table_eval_plan():
    return EvalPlan(train_images=10000, pgd_test_images=None, lipschitz_images=2000, mt_test_images=1000,
                    mt_train_images=500, aa_images=500, aa_standard_images=200, batch_size=64)


#: How the Section 5 table runs are evaluated (:class:`rll.metrics.EvalPlan`): clean and PGD-10
#: accuracy on the whole test split; the train-side columns on 10 000 fixed training images (the
#: regime check's minimum; records stored before the 60 000-image runs used 2 000); both
#: Lipschitz estimators on 2000 fixed test images; the multi-targeted attack on 1000 test and 500
#: training images; AutoAttack's APGD-CE + APGD-DLR on 500 and its standard version on 200 test
#: images (nested subsets of one fixed permutation); batch 64, the fastest on the 2-core CPU.
TABLE_EVAL_PLAN = _table_eval_plan()


#: The learning curves kept in every Section 5 table run: after each epoch, PGD-10 on this many
#: fixed test images (both Lipschitz estimators on half as many) — what the regime check reads to
#: tell whether a row has settled at the full learning rate (rll.analysis.regime).
TABLE_CURVE_IMAGES = 1000


#: The first budget of the CPU table runs, per model (rll's choice, from the search on 34 000
#: images, before the regime rule): 34 000 training images, CNN2 3 epochs decaying after 2, CNN1 8
#: decaying after 6.  None of its models fitted its training set as the paper's did
#: (rll.analysis.regime), so these runs are the lowest rung of the budget ladder and leave the
#: verdicts.
FIRST_CPU_BUDGETS = {"mnist": {"cnn2": {"train_size": 34000, "epochs": 3, "milestones": (2,)},
                               "cnn1": {"train_size": 34000, "epochs": 8, "milestones": (6,)}}}


#: The table budget of each dataset's Section 5 tables, per model (rll's choice, measured on the
#: budget page, ``notebooks/budget``): ``{dataset: {model: keyword arguments of
#: check_table_params}}``.  MNIST: all 60 000 training images, 40 epochs at the paper's learning
#: rate without a decay — the first phase of the paper's 160-epoch schedule (its first decay is
#: after epoch 40), a quarter of its image-epochs.  It is the first rung of CNN2's learning curves
#: at which every measured paper-fidelity row is in the paper's regime
#: (:func:`rll.analysis.regime.regime_epochs`; a test holds this constant to the stored curves).
#: CNN1 shares it; its rows' regime is checked on their own curves.
TABLE_BUDGETS = {"mnist": {"cnn2": {"train_size": None, "epochs": 40, "milestones": ()},
                           "cnn1": {"train_size": None, "epochs": 40, "milestones": ()}}}


#: The seeds the table plan asks of each model (the converged-runs issue: CNN2 seeds 0–2, CNN1
#: seed 0, more as the plan allows).  Other seeds are run only on request.
TABLE_PLAN_SEEDS = {"mnist": {"cnn2": (0, 1, 2), "cnn1": (0,)}}


BEYOND_PLAN = "not planned"


def in_table_plan(config) -> bool:
    """Whether the table plan (:data:`TABLE_PLAN_SEEDS`) asks for ``config``'s seed of its model
    (models without an entry: every seed)."""
    seeds = TABLE_PLAN_SEEDS.get(config.dataset, {}).get(config.model)
    return seeds is None or config.seed in seeds


def model_budget(dataset: str, model: str) -> dict | None:
    """The table budget of ``model`` on ``dataset`` (:data:`TABLE_BUDGETS`), or None if it has none."""
    return TABLE_BUDGETS.get(dataset, {}).get(model)


def at_budget(config: dict, budget: dict | None) -> bool:
    """Whether a record's configuration (its canonical dict) was run at ``budget`` (None: any)."""
    return budget is None or all((list(v) if isinstance(v, tuple) else v) == config.get(k)
                                 for k, v in budget.items())


_GREEK = {"lam": "λ", "beta": "β"}


def parse_method(spec: str) -> tuple[str, dict]:
    """A Section 5 method row: ``"trades(beta=6)"`` → ``("trades", {"beta": 6.0})``; ``"at"`` →
    ``("at", {})`` (:func:`rll.experiments.tables.parse_method_spec`, over the losses' parameters
    :data:`rll.losses.METHOD_PARAMS`)."""
    return parse_method_spec(spec, METHOD_PARAMS)


def method_label(method: str, params: dict) -> str:
    """The paper's row label: ``TRADES(β=6)``, ``RST(λ=.5)``, ``Natural``."""
    name = {"natural": "Natural"}.get(method, method.upper())
    if not params:
        return name
    inner = ",".join(f"{_GREEK.get(k, k)}={_short(v)}" for k, v in sorted(params.items()))
    return f"{name}({inner})"


def _short(v: float) -> str:
    s = f"{float(v):g}"
    return s[1:] if s.startswith("0.") else s


#: The parameter each table row is labelled by (the paper's grid); others keep their defaults.
ROW_PARAMS = {"rst": ("lam",), "trades": ("beta",)}


def row_params(method: str, params) -> dict:
    """The parameters that name a table row: λ for RST, β for TRADES, nothing else."""
    return {k: float(v) for k, v in dict(params).items() if k in ROW_PARAMS.get(method, ())}


def _params_of(config) -> dict:
    if isinstance(config, dict):
        return row_params(config["method"], config["params"])
    return row_params(config.method, config.params)


def table_configs(table: str, *, dataset: str, methods=None, models=None, dropouts=None, epochs=None,
                  seeds=(0,), attack: str = "pgd", fidelity: str = "paper", train_size=None,
                  test_size=None, test_split: str = "test", eps=None, lr=None, milestones=None,
                  budgets=None, precision: str = "fp32") -> list:
    """The training configurations behind one table notebook: models × methods × dropout ×
    seeds.  ``methods`` defaults to the paper's rows; ``dropouts`` to ``(0,)`` except Table 4
    (no dropout and the paper's rate).  ``budgets`` (``{model: {"train_size", "epochs",
    "milestones"}}``, e.g. ``TABLE_BUDGETS[dataset]``) gives a model its own budget in place of
    ``train_size``, ``epochs`` and ``milestones``.  ``precision``: ``fp32``, ``bf16`` (an error
    for a row that refuses it) or ``auto`` (each row bf16 where
    :func:`rll.losses.fastest_precision` allows it, else fp32)."""
    if table not in TABLE_MODELS:
        raise ValueError(f"unknown table {table!r}; valid choices: {', '.join(TABLE_MODELS)}")
    if dataset not in TABLE_MODELS[table]:
        raise ValueError(f"{table} covers datasets {', '.join(TABLE_MODELS[table])}; got {dataset!r}")
    methods = methods or (DROPOUT_METHODS if table == "table4" else PAPER_METHODS)
    models = models or TABLE_MODELS[table][dataset]
    if dropouts is None:
        dropouts = (0.0, DROPOUT_RATE[dataset]) if table == "table4" else (0.0,)
    if not seeds:
        raise ValueError("seeds must list at least one seed, e.g. [0] or [0, 1, 2]")
    configs = []
    for model in models:
        budget = {"train_size": train_size, "epochs": epochs, "milestones": milestones,
                  **(budgets or {}).get(model, {})}
        for spec in methods:
            method, params = parse_method(spec)
            row_precision = fastest_precision(method, fidelity, params) if precision == "auto" else precision
            for dropout in dropouts:
                for seed in seeds:
                    configs.append(TrainConfig(dataset=dataset, model=model, method=method, params=params,
                                               dropout=dropout, seed=int(seed), attack=attack,
                                               fidelity=fidelity, test_size=test_size,
                                               test_split=test_split, eps=eps, lr=lr,
                                               precision=row_precision, **budget))
    return configs


#: Configuration fields that say how a run was computed, not what: a bf16 run of a table row is
#: still that row (its record key differs; the equivalence table shows what bf16 changes).
HOW_FIELDS = ("precision",)


def _what(canonical: dict) -> dict:
    return {k: v for k, v in canonical.items() if k not in BUDGET_FIELDS + HOW_FIELDS}


def stand_ins(config) -> list:
    """The configurations whose record answers for ``config``'s table row, the preferred first:
    ``config`` itself and, for a bf16 run, the same run in fp32.  fp32 is the reference arithmetic
    (bf16 is a speed option, allowed only where the equivalence table found it changes nothing
    beyond the seed spread), so an fp32 record of a row stands for the row a ``--precision auto``
    table asks in bf16; a bf16 record never stands for an fp32 row."""
    if getattr(config, "precision", "fp32") in (None, "fp32"):
        return [config]
    return [config, config.replace(precision="fp32")]


def one_precision_per_run(records: list[dict]) -> list[dict]:
    """``records`` with, of those that differ only in precision, the one a ``--precision auto``
    table reads (:func:`stand_ins`: bf16 where the row allows it, else fp32), so that no run
    counts twice in a mean or a verdict."""
    def rank(r: dict) -> int:
        c = r["config"]
        wanted = fastest_precision(c["method"], c.get("fidelity", "paper"), c.get("params"))
        return 0 if c.get("precision", "fp32") == wanted else 1 if c.get("precision", "fp32") == "fp32" else 2

    best: dict = {}
    for r in records:
        key = tuple(sorted((k, repr(v)) for k, v in r["config"].items() if k not in HOW_FIELDS))
        if key not in best or rank(r) < rank(best[key]):
            best[key] = r
    kept = {id(r) for r in best.values()}
    return [r for r in records if id(r) in kept]


def find_record(records: list[dict], config, *, exact_budget: bool) -> dict | None:
    """The stored record of ``config``, or of its fp32 stand-in (:func:`stand_ins`).  With
    ``exact_budget=False`` any budget (epochs, subset sizes) matches and the largest stored one
    (epochs × training examples) wins."""
    want = config.canonical()
    if exact_budget:
        for candidate in stand_ins(config):
            key = candidate.canonical()
            hit = next((r for r in records if r["config"] == key), None)
            if hit is not None:
                return hit
        return None
    what = _what(want)
    hits = [r for r in records if _what(r["config"]) == what]
    if not hits:
        return None
    return max(hits, key=lambda r: (r["config"]["epochs"] * (r["provenance"].get("n_train") or 0),
                                    r["provenance"].get("started_utc", "")))


def is_table_run(config: dict) -> bool:
    """Whether a stored configuration is a run of the paper's Section 5 tables, at any budget:
    the paper's schedule for its dataset, model, method, dropout, seed, fidelity and attack up to
    :data:`BUDGET_FIELDS` (so not, e.g., a proof-of-concept run or one at another batch size)."""
    c = TrainConfig.from_dict(config)
    paper = TrainConfig(dataset=c.dataset, model=c.model, method=c.method, params=c.params, dropout=c.dropout,
                        seed=c.seed, fidelity=c.fidelity, attack=c.attack, test_split=c.test_split)
    return _what(paper.canonical()) == _what(c.canonical())


def paper_budget(config):
    """``config`` at the paper's budget: its schedule's epochs and learning rate, all data."""
    return config.replace(epochs=None, lr=None, train_size=None, test_size=None)


def table_budget(dataset: str, *, epochs=None, train_size=None, milestones=None) -> tuple[dict, bool]:
    """The budget a table notebook reads and trains: the given fields for every model, or — when
    none is given — each model's :data:`TABLE_BUDGETS` entry (``{"budgets": {model: ...}}``).
    Returns ``(keyword arguments for check_table_params, exact)``: ``exact`` is whether only
    runs of exactly that budget count (False only for a dataset without a table budget and
    nothing given: then the largest stored budget is read, and training uses the paper's
    schedule)."""
    given = {k: v for k, v in (("epochs", epochs), ("train_size", train_size), ("milestones", milestones))
             if v is not None}
    if given:
        return {k: tuple(v) if k == "milestones" else v for k, v in given.items()}, True
    if dataset in TABLE_BUDGETS:
        return {"budgets": dict(TABLE_BUDGETS[dataset])}, True
    return {}, False


def parse_method_spec(spec, accepted: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict]:
    """The one grammar of a method everywhere (tables, sweeps, the Staircase): ``name`` or
    ``name(param=value, ...)``, e.g. ``"trades(beta=6)"`` → ``("trades", {"beta": 6.0})``,
    ``"at"`` → ``("at", {})``.  ``accepted`` maps each method name to its parameters and their
    defaults; a string default means a choice, kept as text.  Raises ``ValueError`` naming the
    valid methods or parameters."""
    examples = "e.g. 'trades(beta=6)', 'rst(lam=0.5)'"
    if not isinstance(spec, str):
        raise ValueError(f"a method must be a string such as 'natural' or 'trades(beta=6)' (got {spec!r})")
    text = spec.strip().replace(" ", "")
    name, colon, old = text.partition(":")
    if colon:
        key = next(iter(accepted.get(name.lower(), {})), "param")
        raise ValueError(f"{spec!r} is the old Staircase spelling; write '{name.lower()}({key}={old})' — one grammar "
                         f"for every method: name(param=value), {examples}")
    name, _, rest = text.partition("(")
    name = name.lower()
    if name not in accepted:
        raise ValueError(f"unknown method {spec!r}; valid choices: {', '.join(accepted)} (parameters as {examples})")
    params: dict = {}
    if rest:
        if not rest.endswith(")"):
            raise ValueError(f"malformed method {spec!r}: expected name(param=value, ...)")
        for item in filter(None, rest[:-1].split(",")):
            key, eq, value = item.partition("=")
            if not eq or key not in accepted[name]:
                valid = ", ".join(accepted[name]) or "none"
                raise ValueError(f"method {name!r} takes no parameter {key!r}; valid parameters: {valid}")
            if isinstance(accepted[name][key], str):
                params[key] = value          # a choice (e.g. rll.losses.PARAM_CHOICES), checked by its user
                continue
            try:
                params[key] = float(value)
            except ValueError:
                raise ValueError(f"parameter {key} of {spec!r} must be a number, got {value!r}") from None
    return name, params
