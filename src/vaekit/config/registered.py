"""Settings that name a registry's entry: a prior, posterior, objective or model family registered by the user
(``register_prior``, ``register_posterior``, ``register_objective``, ``vaekit.models.register``) is a valid
setting in the process that registered it alone. A config naming one this process lacks is refused in one line
saying which setting names which entry and how to make it known; vaekit never imports a module because a run
folder names it (docs/guides/security.md): the user imports it, in Python or with the CLI's --import."""

from __future__ import annotations

from ..errors import VaekitError

# each setting that names an entry: what the entry is, and the function that registers one
REGISTERS = {
    "model.prior": ("prior", "vaekit.models.priors.register_prior"),
    "model.posterior": ("posterior", "vaekit.models.posteriors.register_posterior"),
    "train.objective": ("objective", "vaekit.core.objectives_zoo.register_objective"),
    "model.family": ("model family", "vaekit.models.register"),
}
# the entries only training reads: a run loaded to be used (sampled, evaluated, exported) does without them
TRAINING_ONLY = ("train.objective",)
IMPORT_IT = "import the module that registers it"  # the CLI says its own way of it (cli.imports)
UNKNOWN = "which this process has not registered"  # how the CLI tells the line (a run's path may lead it)


def unregistered(key: str, name: object, known: tuple[str, ...] | list[str]) -> str:
    """The line for the setting ``key`` naming ``name``, an entry this process has not registered (``known``:
    those it has): which entry, and how to make it known."""
    what, how = REGISTERS[key]
    return f"{key} names the {what} {name!r}, {UNKNOWN} (known: {', '.join(known)}): {IMPORT_IT} ({how}) first"


def refuse_unregistered(key: str, name: object, known: tuple[str, ...], loaded: bool) -> None:
    """Refuse ``name`` for ``key`` (a registry's setting, see ``REGISTERS``) unless it is ``known``, or an entry
    that only training reads in a config ``loaded`` from a run folder to be used (``Stored.loaded``)."""
    if name in known or (loaded and key in TRAINING_ONLY):
        return
    raise VaekitError(f"config: {unregistered(key, name, known)}", key=key)
