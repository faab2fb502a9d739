"""The train verb's flags and the config they make: defaults < --config < flags < --set, with the flags that
cannot all take effect refused in one line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import files
from ..config.formats import shown
from ..config.specs import BUILTINS
from ..errors import VaekitError

if TYPE_CHECKING:
    from ..config import RunConfig

# flag -> (config key, metavar, help); every other setting is reachable with --set key=value
TABLE = {
    "data": ("data.spec", "SPEC", f"a built-in set ({', '.join(BUILTINS)}), or a file or folder"),
    "data_dir": ("data.data_dir", "DIR", "where to look for IDX files first"),
    "binarize": ("data.binarize", "MODE", "x ~ Bernoulli(x): auto, dynamic (every batch), fixed (once) or none"),
    "limit": ("data.limit", "N", "at most N items per source"),
    "likelihood": ("model.likelihood", "NAME", "p(x|z): auto, bernoulli, cbernoulli, gaussian, discretized_logistic"),
    "latent_dim": ("model.latent_dim", "D", "size of z"),
    "latent_dims": ("model.latent_dims", "32,16", "the ladder's levels, z_1 (next to the data) first"),
    "hidden": ("model.hidden", "400,400", "MLP widths"),
    "channels": ("model.channels", "32,64", "conv widths, one stride-2 block each"),
    "prior": ("model.prior", "standard|mixture|vamp|flow", "p(z) of the vae family"),
    "posterior": ("model.posterior", "gaussian|iaf|nsf", "q(z|x) of the vae family"),
    "epochs": ("train.epochs", "N", "epochs to train"),
    "batch_size": ("train.batch_size", "N", "the (global) batch size"),
    "lr": ("train.lr", "LR", "Adam's learning rate"),
    "seed": ("train.seed", "N", "seeds the split, the initial weights, the batches and every draw"),
    "beta": ("train.beta", "BETA", "weight of the KL term"),
    "warmup_epochs": ("train.warmup_epochs", "N", "the KL weight rises linearly from 0 to beta over N epochs"),
    "free_bits": ("train.free_bits", "NATS", "nats per latent dimension below which the KL is not pushed down"),
    "patience": ("train.patience", "N", "stop after N epochs without a better validation loss; 0: off"),
    "min_delta": ("train.min_delta", "NATS", "with --patience: a validation loss counts as better by more than this"),
    "objective": ("train.objective", "elbo|iwae|miwae|ciwae|piwae|mmd|factor", "the training objective"),
    "iw_samples": ("train.iw_samples", "K", "importance samples (per group) of iwae, miwae, ciwae, piwae"),
    "iw_groups": ("train.iw_groups", "M", "groups of K samples of miwae, piwae"),
    "device": ("train.device", "auto|cpu|cuda|cuda:N", "auto: CUDA when present; cuda:N one GPU by its number"),
    "threads": ("train.threads", "N", "CPU threads of training's operations; 0: torch's (or OMP_NUM_THREADS's)"),
    "precision": ("train.precision", "auto|fp32|bf16", "dtype of the networks' matrix products"),
    "compile": ("train.compile", "auto|off|graph|compile", "run the training step through torch.compile"),
    "out": ("out", "DIR", "the run folder to write"),
}
FLAGS = {flag: key for flag, (key, _, _) in TABLE.items()}
AUTO = {  # what auto picks, as data.prepare.resolve_auto decides it from the training split's values
    "likelihood": "bernoulli for binary values; discretized_logistic for images on 8-bit levels k/255 in [0, 1] "
    "(mnist5k, mnist, fashion-mnist); for other images in [0, 1] bernoulli if grey (digits: levels k/16), "
    "cbernoulli if colour or 16-bit; gaussian otherwise (a table with categories: gaussian, one-hot codes)",
    "binarize": "dynamic where the likelihood is bernoulli on grey images not binary already (digits), else none",
}
COUNTS = {"limit", "latent_dim", "epochs", "batch_size", "seed", "patience", "iw_samples", "iw_groups", "threads"}


def flag_help(flag: str) -> str:
    """--FLAG's help: what it sets, its config key, its default (``RunConfig``'s) and what auto picks (``AUTO``)."""
    from ..config import RunConfig

    key, _, text = TABLE[flag]
    default = RunConfig().out if key == "out" else value_of(RunConfig(), key)
    default = ",".join(map(str, default)) if isinstance(default, list) else default
    auto = f"; auto: {AUTO[flag]}" if flag in AUTO else ""
    shown_default = "" if default in (None, "", ()) else f" (default: {shown(default).replace('%', '%%')})"
    return f"{text}{auto} ({key}){shown_default}"


def train_config(args: argparse.Namespace):
    """defaults < --config (TOML, or a run's config.json; the resumed run's config.json) < flags < --set."""
    from ..config import RunConfig, load_json_config, load_toml_config, set_value
    from ..config.sources import relative_from_cwd

    refuse_flag_conflicts(args)
    sets = given_sets(args.set)
    again = trained_again(args)  # a run's config.json: the folder it records (any path, sent with it) is never taken
    if args.resume:
        cfg = load_json_config(Path(args.resume) / files.CONFIG)
        cfg.out = args.resume
    else:
        cfg = load_toml_config(config_named(args.config, again)) if args.config else RunConfig()
    cfg.stored.loaded = False  # to train: every entry it names must be registered here (the objective too)
    if args.resume or again:  # progress is this command's to show (--quiet), not the run's
        cfg.train.progress = True
    cfg.out, from_file = "" if again else cfg.out, cfg.data.spec
    for key, name in zip(("model.family", "model.net"), model_choice(args.model)):
        if name is not None:
            set_value(cfg, key, name, given=True)
    if args.conditional:
        set_value(cfg, "model.family", "cvae", given=True)
    for flag, key in FLAGS.items():
        if getattr(args, flag) is not None:
            set_value(cfg, key, getattr(args, flag), given=True)
    if getattr(args, "no_tensorboard", False):  # a switch: train.tensorboard false
        set_value(cfg, "train.tensorboard", False, given=True)
    for key, value in sets:
        set_value(cfg, key, value, given=True)  # given: refused where unread (checks.given)
    if args.quiet:
        cfg.train.progress = False
    if not cfg.data.spec.strip() and not again:  # a run's config.json of vaekit.fit: Run's own line
        raise VaekitError("data.spec is empty: name a built-in set, a file or a folder", key="data.spec")
    if args.config and not again and cfg.data.spec == from_file:  # the file's own spec, not --data's
        relative_from_cwd(cfg.data.spec, args.config)
    if not cfg.out:  # the API's no-folder fit, or a run's config.json: here a run folder is the point
        said = f" (--config {args.config}: the folder a run's config.json records is not used)" if again else ""
        raise VaekitError(f"the run folder (--out) is empty: name the folder to write{said}")
    if again and args.nproc is None and os.environ.get("RANK", "0") == "0":  # said once: by torchrun's rank 0
        said_resumes(args.config, cfg)
    return cfg


def said_resumes(config: str, cfg: RunConfig) -> None:
    """Warn, in one line, where the run's config.json ``config`` records resumes that changed settings (which
    it then holds as the last ones) and ``cfg`` trains with those from epoch 1, unlike that run's first epochs."""
    from ..config.parse import first_settings
    from ..logs import warning

    first, epoch = first_settings(config)
    now = {k: value_of(cfg, k) for k in first}
    changed = [k for k, v in first.items() if json.dumps(now[k]) != json.dumps(v)]  # as config.json holds them
    if changed:
        last, before = (", ".join(f"{k} {shown(d[k])}" for k in changed) for d in (now, first))
        warning(
            f"--config {config}: that run was resumed with other settings, and this run trains with the last ones "
            f"({last}) from epoch 1, while that run's epochs before {epoch} trained with {before}; --set KEY=VALUE "
            "trains with those"
        )


def value_of(cfg: RunConfig, key: str) -> object:
    """``cfg``'s value of the setting ``key`` ('train.lr'), None where it has no such setting."""
    section, _, name = key.partition(".")
    return getattr(getattr(cfg, section, None), name, None)


def config_named(name: str, again: bool) -> str:
    """``name`` (--config) as it names one config: refused in one line where it names both a preset and a TOML file
    here (demo and demo.toml), or is a JSON file written by hand (``hand_written``)."""
    from ..config.sources import preset_clash

    if (clash := preset_clash(name)) is not None:
        raise VaekitError(clash)
    if again and hand_written(Path(name)):
        from ..config import FORMAT

        raise VaekitError(
            f'{name}: a JSON config with neither "format" nor "written_by" is read as a run\'s config.json of an '
            f"older vaekit (format 1, its missing settings filled as that vaekit did): write the settings as TOML, "
            f'or add "format": {FORMAT}'
        )
    return name


def hand_written(path: Path) -> bool:
    """Whether the JSON config ``path`` was written by hand: it has neither "format" nor "written_by", which every
    config.json vaekit writes has, and sits beside no weights (a run of a vaekit before "format" keeps them)."""
    from ..config.parse import WRITTEN_BY
    from ..io import read_plain

    if any((path.parent / name).exists() for name in (files.WEIGHTS, files.CHECKPOINT)):
        return False
    try:
        d = json.loads(read_plain(path))
    except (OSError, ValueError, RecursionError):  # VaekitError too: load_json_config says what is wrong
        return False
    return isinstance(d, dict) and "format" not in d and WRITTEN_BY not in d


def given_sets(items: list[str]) -> list[tuple[str, str]]:
    """(key, value) of each --set KEY=VALUE; one setting set twice (train.lr twice, or lr and train.lr) is refused
    in one line, not decided by the last (a flag that --set overrides is not: the order documented)."""
    from ..config.keys import full_keys

    sets = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise VaekitError(f"--set {item!r}: expected KEY=VALUE")
        sets.append((key.strip(), value.strip()))
    try:
        full_keys(sets)
    except VaekitError as e:  # the flag of the key is not at fault: both came by --set
        raise VaekitError(f"--set: {str(e).removeprefix('config: ')}") from None
    return sets


def trained_again(args: argparse.Namespace) -> bool:
    """Whether --config names a run's config.json (a run trained again), not a TOML file or a preset."""
    return bool(args.config) and str(args.config).lower().endswith(".json")


def refuse_flag_conflicts(args: argparse.Namespace) -> None:
    """Flags that cannot all take effect: one line naming both."""
    pairs = [
        ("--resume", "--config", args.resume and args.config, "a resumed run keeps its own config.json"),
        ("--resume", "--overwrite", args.resume and args.overwrite, "one continues the run, the other replaces it"),
        (
            "--resume",
            "--out",
            args.resume and args.out and Path(args.out) != Path(args.resume),
            "a resumed run is written where it is; copy the folder to continue it elsewhere",
        ),
        (
            "--conditional",
            "--model",
            args.conditional and model_choice(args.model)[0] not in (None, "cvae"),
            "each names the model family",
        ),
    ]
    for a, b, clash, why in pairs:
        if clash:
            raise VaekitError(f"{a} and {b} cannot both take effect: {why}")


def model_choice(given: list[str] | None) -> tuple[str | None, str | None]:
    """(family, network) that --model names, once or twice (``--model ladder --model conv``); None where it names
    none. Two families, or two networks, cannot both take effect: one line naming both."""
    picked: dict[str, str] = {}
    if given:
        models = families()
        for name in given:
            if name not in (*models, "mlp", "conv"):  # model.net custom: networks built in Python (vaekit.fit)
                known = ", ".join(["mlp", "conv", *models])
                raise VaekitError(f"--model {name!r}: expected a network or a model family: {known}")
            kind = "model family" if name in models else "network"
            if picked.setdefault(kind, name) != name:
                clash = f"--model {picked[kind]} and --model {name}"
                raise VaekitError(f"{clash} cannot both take effect: each names the {kind}")
    return picked.get("model family"), picked.get("network")


def families() -> dict:
    """The model families (``vaekit.models.MODELS``), imported only when --model or --conditional needs them:
    the registry loads torch, and the other flags are checked without it."""
    from ..models import MODELS

    return MODELS
