"""What ``vaekit.fit`` holds a resumed run to, and how it reads the record an earlier vaekit wrote: the classes its
labels name, its networks as config.json described them then, and the settings recorded at their defaults."""

from __future__ import annotations

from pathlib import Path

from . import files
from .config import RunConfig
from .config.checks import maybe_own, own_likelihood
from .data.run_json import read_classes
from .errors import VaekitError
from .io import read_json
from .models import MODELS
from .models.spec import class_path
from .training.describe import CUSTOM, CVAE_SETTINGS, ZOO_SETTINGS

NETWORKS = ("net", "hidden", "channels")  # how config.json describes a model's networks


def as_own(saved: RunConfig | None, likelihood: str) -> RunConfig | None:
    """``saved`` (a run's config.json, as ``api._saved_config`` read it), changed in place where it is of format 1,
    which vaekit wrote before it named a p(x|z) of the user's own ('own:Beta') and which recorded 'gaussian' in
    its stead: read as ``likelihood``, given for a model of the class its model.json records."""
    if saved is not None and maybe_own(saved) and own_likelihood(likelihood):
        saved.model.likelihood = likelihood
    return saved


def same_classes(out: str | Path | None, classes: list[str] | None) -> None:
    """Refuse, in one line naming both, data resuming the run in ``out`` whose labels name other classes
    (``classes``, label 0 first) than the run was trained on (its classes.json): the run's label numbers would
    then stand for other classes. Data without class names (labels 0..K-1, or none) is not checked."""
    path = Path(str(out)) / files.CLASSES if out else None
    if not classes or path is None or not path.is_file():
        return
    saved = read_classes(path)
    if saved != list(classes):
        raise VaekitError(
            f"{path}: the run was trained on the classes {_listed(saved)}, and the data's labels name "
            f"{_listed(classes)}: resume it on labels of its classes, or train a new run (another out folder)",
            key="resume",
        )


def fitted_in_memory(saved: RunConfig, cfg: RunConfig) -> None:
    """Refuse, in one line, resuming by its settings (``cfg``) a run ``vaekit.fit`` trained on data in memory
    (``saved``: its config.json, with no data.spec) where no data is named, or where it records a test split the
    fit did not make (data.test_fraction other than 0: an earlier vaekit recorded the default), so the items of
    a file cannot be split as fit split them; each says to resume it with fit."""
    if saved.data.spec or (cfg.data.spec and not saved.data.test_fraction):
        return
    why = ""
    if cfg.data.spec:  # an earlier vaekit's record
        why = (
            f", split into train and val alone, and its config.json records data.test_fraction "
            f"{saved.data.test_fraction:g} (the default, recorded so before): a file's items cannot be split as it was"
        )
    raise VaekitError(
        f"{cfg.out}: this run was trained by vaekit.fit on data in memory{why}: resume it with "
        "vaekit.fit(model, data, out=..., resume=True)"
    )


def _listed(names: list[str]) -> str:
    """At most 10 class names, quoted: ['a', 'b', ...]."""
    return str(names[:10])[:-1] + (", ...]" if len(names) > 10 else "]")


def unwrapped_record(saved: RunConfig, cfg: RunConfig, out: Path) -> None:
    """A run fit wrote on standardised columns before it described the model inside the Standardized wrapper
    recorded family 'custom' and that wrapper's default prior and posterior: read as the model given describes
    them (its class is the one model.json records: ``resumes_class``). So is a DeepVAE's run recorded before fit
    described its deep_* settings (with the ladder's latent_dims, reversed, and the defaults), and the gaussian
    scale or the logistic mixture's components of a vaekit family's model, and a conditional VAE's label embedding
    and learned prior, read from model.json's init arguments. A run recorded before fit named the built-in
    networks of ``build_model`` (model.net 'custom': its model.json) goes on so: ``cfg`` describes it as then."""
    if saved.model.family == CUSTOM != cfg.model.family and saved.data.standardize == "true":
        for name in ("family", "prior", "posterior", *ZOO_SETTINGS):
            setattr(saved.model, name, getattr(cfg.model, name))
    if saved.model.family == "deep" == cfg.model.family and saved.model.latent_dims:  # recorded before deep_*
        for name in ("latent_dims", *ZOO_SETTINGS):
            setattr(saved.model, name, getattr(cfg.model, name))
    args = _spec_args(out)  # a vaekit family's likelihood settings, recorded at their defaults before: its init's
    if saved.model.likelihood == "gaussian" and "scale" in args:
        saved.model.scale = str(args["scale"])
    if saved.model.likelihood == "discretized_logistic" and "components" in args:
        saved.model.likelihood_components = args["components"]
    for key in CVAE_SETTINGS if saved.model.family == "cvae" else ():  # recorded at their defaults before
        setattr(saved.model, key, args.get(key, getattr(saved.model, key)))
    if saved.model.net == CUSTOM:  # its model.json is written again, and its checkpoint rests on net 'custom'
        for name in NETWORKS:
            setattr(cfg.model, name, getattr(saved.model, name))


def _spec_args(out: Path) -> dict:
    """The init arguments model.json records for the run's model of a vaekit family ({} for another class, or
    where it records none, or is unreadable)."""
    try:
        record = read_json(out / files.MODEL)
    except (OSError, VaekitError):
        return {}
    spec = record.get("spec") if isinstance(record, dict) else None
    family = isinstance(spec, dict) and spec.get("class") in {class_path(c) for c in MODELS.values()}
    args = spec.get("args") if family and isinstance(spec, dict) else None  # not a wrapper's (Standardized)
    return args if isinstance(args, dict) else {}
