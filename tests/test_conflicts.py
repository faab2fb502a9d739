"""Every setting takes effect or is refused: each pair of settings, and of CLI flags, that cannot all take effect
is refused in one line, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.config import CONFLICTS, RunConfig, load_json_config, refuse_conflicts, set_value, validate

BETA_ZERO = {"warmup_epochs": 2, "free_bits": 0.5, "tc_beta": 6}  # settings that shape the KL term beta weighs
# one setting pair per conflict: what makes each clash
CLASH = {
    ("train.tc_beta", "model.latent_dim"): ["model.latent_dim=1", "train.tc_beta=6"],
    ("train.objective", "model.latent_dim"): ["model.latent_dim=1", "train.objective=factor"],
    ("train.tc_beta", "train.capacity_max"): ["train.tc_beta=6", "train.capacity_max=25"],
    ("train.capacity_max", "train.free_bits"): ["train.capacity_max=25", "train.free_bits=0.5"],
    ("train.tc_beta", "train.free_bits"): ["train.tc_beta=6", "train.free_bits=0.5"],
    ("train.capacity_max", "train.beta"): ["train.capacity_max=25", "train.beta=4"],
    ("train.capacity_max", "train.warmup_epochs"): ["train.capacity_max=25", "train.warmup_epochs=2"],
    ("train.capacity_epochs", "train.capacity_max"): ["train.capacity_epochs=5"],
    ("train.gamma", "train.capacity_max"): ["train.gamma=50"],
    ("train.dimwise_warmup_epochs", "train.tc_beta"): ["train.dimwise_warmup_epochs=2"],
    ("train.tc_estimator", "train.tc_beta"): ["train.tc_estimator=mss"],
    ("model.prior_components", "model.prior"): ["model.prior_components=3"],
    ("model.prior_components", "model.learned_prior"): [
        "model.family=cvae",
        "model.prior_components=3",
        "model.learned_prior=false",
    ],
    ("model.label_embedding", "model.family"): ["model.label_embedding=4"],
    ("model.num_classes", "model.family"): ["model.num_classes=3"],
    ("model.deep_ar_kernel", "model.deep_ar_channels"): ["model.family=deep", "model.deep_ar_kernel=5"],
    ("model.learned_prior", "model.family"): ["model.learned_prior=false"],
    ("model.latent_dims", "model.family"): ["model.latent_dims=4,2"],
    ("model.ladder_posterior", "model.family"): ["model.ladder_posterior=precision"],
    ("model.latent_dim", "model.latent_dims"): ["model.family=ladder", "model.latent_dims=4,2", "model.latent_dim=5"],
    ("model.scale", "model.likelihood"): ["model.scale=shared"],
    ("model.channels", "model.net"): ["model.channels=8,8"],
    ("model.hidden", "model.net"): ["model.net=conv", "model.hidden=8"],
    ("model.likelihood_components", "model.likelihood"): ["model.likelihood=gaussian", "model.likelihood_components=3"],
    ("data.standardize", "model.likelihood"): ["data.standardize=true", "model.likelihood=bernoulli"],
    **{
        (f"model.{k}", "model.family"): [f"model.{k}={v}"]
        for k, v in (
            ("deep_groups", "1,1"),
            ("deep_width", 16),
            ("deep_cell_width", 8),
            ("deep_latent_channels", 2),
            ("deep_cells", 2),
            ("deep_patch", 2),
            ("deep_head_kernel", 1),
            ("deep_ar_channels", 8),
            ("deep_ar_kernel", 5),
            ("deep_init", "zero"),
            ("residual_posterior", "true"),
            ("checkpoint_cells", "true"),
        )
    },
    ("model.latent_dim", "model.family"): ["model.family=deep", "model.latent_dim=5"],
    ("model.hidden", "model.family"): ["model.family=deep", "model.hidden=8"],
    ("model.channels", "model.family"): ["model.family=deep", "model.channels=8,8"],
    ("model.net", "model.family"): ["model.family=deep", "model.net=conv"],
    ("train.beta", "model.family"): ["model.family=vq", "train.beta=4"],
    ("train.warmup_epochs", "model.family"): ["model.family=vq", "train.warmup_epochs=1"],
    ("train.free_bits", "model.prior"): ["model.prior=vamp", "train.free_bits=0.5"],
    ("train.tc_beta", "model.prior"): ["model.prior=mixture", "train.tc_beta=6"],
    ("train.tc_beta", "model.prior_components"): ["model.family=cvae", "model.prior_components=3", "train.tc_beta=6"],
    ("train.free_bits", "model.posterior"): ["model.posterior=iaf", "train.free_bits=0.5"],
    ("train.free_bits", "model.family"): ["model.family=gumbel", "train.free_bits=0.5"],
    ("train.skip_grad", "train.clip_grad"): ["train.clip_grad=200", "train.skip_grad=100"],
    ("train.min_delta", "train.patience"): ["train.min_delta=0.1"],
    **{
        ("train.kl_balance", f"train.{k}"): ["model.family=ladder", "train.kl_balance=true", f"train.{k}={v}"]
        for k, v in (("free_bits", 0.5), ("capacity_max", 25), ("tc_beta", 6))
    },
    ("train.kl_balance", "train.warmup_epochs"): ["model.family=ladder", "train.kl_balance=true"],
    ("model.family", "train.kl_balance"): ["train.kl_balance=true", "train.warmup_epochs=1"],
    **{  # the one latent group of a hierarchy
        (f"model.{k}", "train.kl_balance"): [
            f"model.family={f}",
            f"model.{k}={v}",
            "train.kl_balance=true",
            "train.warmup_epochs=1",
        ]
        for f, k, v in (("deep", "deep_groups", "0,1"), ("ladder", "latent_dims", "4"))
    },
}
CLASH.update(
    {  # the zoo's axes (vaekit.config.conflicts_zoo)
        ("model.pseudo_inputs", "model.prior"): ["model.pseudo_inputs=10"],
        ("model.pseudo_init", "model.prior"): ["model.pseudo_init=noise"],
        ("model.flow_transforms", "model.prior"): ["model.flow_transforms=2"],
        ("model.flow_hidden", "model.prior"): ["model.flow_hidden=8"],
        ("train.iw_samples", "train.objective"): ["train.iw_samples=3"],
        ("train.iw_groups", "train.objective"): ["train.objective=iwae", "train.iw_groups=2"],
        ("train.ciwae_beta", "train.objective"): ["train.ciwae_beta=0.3"],
        ("train.mmd_weight", "train.objective"): ["train.mmd_weight=3"],
        ("train.mmd_kernel", "train.objective"): ["train.mmd_kernel=rbf"],
        ("train.factor_gamma", "train.objective"): ["train.factor_gamma=3"],
        ("train.free_bits", "train.objective"): ["train.objective=iwae", "train.free_bits=0.5"],
        ("train.capacity_max", "train.objective"): ["train.objective=mmd", "train.capacity_max=25"],
        ("train.tc_beta", "train.objective"): ["train.objective=factor", "train.tc_beta=6"],
        ("model.prior", "model.family"): ["model.family=ladder", "model.prior=vamp"],
        ("model.posterior", "model.family"): ["model.family=cvae", "model.posterior=iaf"],
        ("train.tc_beta", "model.posterior"): ["model.posterior=iaf", "train.tc_beta=6"],
        ("train.beta", "train.objective"): ["train.objective=iwae", "train.beta=4"],
        ("train.warmup_epochs", "train.objective"): ["train.objective=iwae", "train.warmup_epochs=2"],
        ("train.kl_balance", "train.objective"): [
            "model.family=ladder",
            "train.objective=mmd",
            "train.kl_balance=true",
            "train.warmup_epochs=1",
        ],
        ("train.objective", "model.family"): ["model.family=vq", "train.objective=iwae"],
        # the discrete families and photo folders
        ("data.crop", "data.image_size"): ["data.crop=none"],
        **{
            (f"model.{k}", "model.family"): [f"model.{k}={v}"]
            for k, v in [
                ("codebook_size", 8),
                ("code_dim", 8),
                ("commitment", 0.5),
                ("codebook_decay", 0.9),
                ("pixelcnn_channels", 8),
                ("pixelcnn_layers", 2),
                ("categories", 4),
            ]
        },
        **{
            ("model.family", f"train.{k}"): [f"train.{k}={v}"]
            for k, v in [("prior_epochs", 2), ("gumbel_tau", 2), ("gumbel_tau_end", 0.3)]
        },
        ("model.family", "train.tc_beta"): ["model.family=gumbel", "train.tc_beta=6"],
        ("model.family", "train.capacity_max"): ["model.family=vq", "train.capacity_max=25"],
        ("model.family", "train.free_bits"): ["model.family=vq", "train.free_bits=0.5"],
        ("model.latent_dim", "model.net"): ["model.family=vq", "model.net=conv", "model.latent_dim=8"],
        ("train.batch_size", "train.objective"): ["train.objective=mmd", "train.batch_size=1"],
        ("train.batch_size", "train.tc_beta"): ["train.tc_beta=6", "train.batch_size=1"],
        ("train.free_bits", "model.prior_components"): [
            "model.family=cvae",
            "model.prior_components=3",
            "train.free_bits=0.5",
        ],
        # beta 0: no KL term for these to shape
        ("train.dimwise_warmup_epochs", "train.beta"): [
            "train.beta=0",
            "train.tc_beta=6",
            "train.dimwise_warmup_epochs=2",
        ],
        **{(f"train.{k}", "train.beta"): ["train.beta=0", f"train.{k}={v}"] for k, v in BETA_ZERO.items()},
        ("train.beta", "model.prior"): ["train.beta=0", "model.prior=mixture"],
        ("train.beta", "model.learned_prior"): ["model.family=cvae", "train.beta=0"],
        ("train.tc_beta", "model.family"): ["model.family=deep", "train.tc_beta=6"],
    }
)


def test_each_row_of_the_table_has_its_clash_and_each_clash_its_row():
    assert set(CLASH) == {(a, b) for a, b, *_ in CONFLICTS}


@pytest.mark.parametrize("a,b", [(a, b) for a, b, *_ in CONFLICTS], ids=[f"{a}+{b}" for a, b, *_ in CONFLICTS])
def test_settings_that_cannot_all_take_effect_are_refused(a, b, tmp_path, capsys):
    sets = [x for s in CLASH[(a, b)] for x in ("--set", s)]
    assert main(["train", "--data", "digits", "--quiet", *sets, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and a in err and b in err and "cannot both take effect" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--resume", "{run}", "--out", "{tmp}/other"], "--resume and --out"),
        (["--resume", "{run}", "--overwrite"], "--resume and --overwrite"),
        (["--resume", "{run}", "--config", "configs/demo.toml"], "--resume and --config"),
        (["--conditional", "--model", "ladder", "--data", "digits"], "--conditional and --model"),
    ],
    ids=["resume-out", "resume-overwrite", "resume-config", "conditional-ladder"],
)
def test_flags_that_cannot_all_take_effect_are_refused(flags, needle, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["train", *[f.format(run=tmp_path / "run", tmp=tmp_path) for f in flags]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    "built, train, needle",
    [
        ({"prior": "vamp", "pseudo_inputs": 20}, {"free_bits": 0.5}, "train.free_bits and model.prior"),
        ({"prior_components": 5}, {}, "model.prior_components and model.prior"),
        ({"prior": "mixture", "pseudo_inputs": 50}, {}, "model.pseudo_inputs and model.prior"),
        ({"flow_transforms": 5}, {}, "model.flow_transforms and model.prior"),
        ({"prior": "vamp", "pseudo_inputs": 20, "pseudo_init": "noise"}, {}, None),
    ],
)
def test_fit_holds_a_model_built_in_python_to_the_table_and_records_its_settings(built, train, needle, tmp_path):
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    nets = nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), nn.Sequential(nn.Linear(4, 16), nn.Unflatten(1, (1, 4, 4)))
    model = vaekit.VAE(*nets, 4, **built)
    fit = lambda: vaekit.fit(model, x, epochs=1, out=tmp_path, progress=False, pictures=False, **train)  # noqa: E731
    if needle:
        with pytest.raises(vaekit.VaekitError, match=needle):
            fit()
        return
    fit()
    saved = json.loads((tmp_path / "config.json").read_text())["model"]
    assert {k: saved[k] for k in built} == built  # not the defaults (500 pseudo-inputs from data)


@pytest.mark.parametrize(
    "shaper, why",
    [
        ("train.free_bits=0.5", "free bits floor each latent dimension's KL"),
        ("train.capacity_max=25", r"the capacity objective puts gamma \* \|KL - C\| .* in the KL's place"),
        ("train.tc_beta=6", "beta-TCVAE splits the KL into MI, total correlation and dimension-wise terms"),
    ],
)
def test_kl_balancing_names_how_the_other_setting_reshapes_the_kl(shaper, why):
    cfg = RunConfig()
    for s in ("model.family=deep", "train.kl_balance=true", "train.warmup_epochs=1", shaper):
        set_value(cfg, *s.split("="))
    with pytest.raises(vaekit.VaekitError, match=rf"cannot both take effect: {why}, so the loss holds no plain KL"):
        refuse_conflicts(cfg, only=("train.kl_balance",))  # capacity_max clashes with the warm-up too


@pytest.mark.parametrize(
    "family, refused", [("cvae", False), ("custom", False), ("vae", True), ("deep", True), ("ladder", True)]
)
def test_num_classes_is_read_by_the_conditional_vae_alone(family, refused):
    cfg = RunConfig()
    cfg.model.family, cfg.model.num_classes = family, 3
    if not refused:
        assert refuse_conflicts(cfg) is cfg  # cvae: given, or filled from the labels (which happens after the check)
        return
    with pytest.raises(vaekit.VaekitError, match=r"^config: model.num_classes and model.family .* \(cvae\) reads"):
        refuse_conflicts(cfg)


def test_a_conditional_run_fills_num_classes_from_its_labels(tmp_path):
    run = vaekit.train(
        data="digits", model="cvae", limit=40, hidden=[8], latent_dim=2, epochs=1, out=tmp_path, pictures=False
    )
    assert run.config.model.num_classes == 10 and run.model.num_classes == 10


def test_fit_records_classes_only_for_a_model_that_reads_labels_and_older_records_are_read_so(tmp_path):
    x, y = torch.rand(40, 1, 4, 4), torch.arange(40) % 3
    model = vaekit.build_model(family="vae", input_shape=(1, 4, 4), latent_dim=2, hidden=[4], likelihood="cbernoulli")
    run = vaekit.fit(model, (x, y), epochs=1, out=tmp_path / "r", pictures=False)
    assert run.config.model.num_classes == 0  # was 3: then refused by vaekit.train(run.config)
    written = json.loads((tmp_path / "r" / "config.json").read_text())
    written["model"]["num_classes"] = 3  # as vaekit.fit wrote it before
    (tmp_path / "r" / "config.json").write_text(json.dumps(written))
    assert refuse_conflicts(vaekit.load_run(tmp_path / "r").config).model.num_classes == 0


@pytest.mark.parametrize("family", ["ladder", "deep"])
def test_piwae_is_refused_for_a_hierarchy_whose_latents_depend_on_generative_parameters(family):
    cfg = RunConfig()
    cfg.model.family, cfg.train.objective = family, "piwae"
    with pytest.raises(vaekit.VaekitError, match=r"^config: train.objective and model.family .*top-down generative"):
        refuse_conflicts(cfg)
    cfg.train.objective = "miwae"
    assert refuse_conflicts(cfg) is cfg  # the bounds with one gradient for every parameter stay


@pytest.mark.parametrize("objective", ["elbo", "mmd", "factor"])
def test_beta_0_is_taken_alone_and_refused_beside_a_kl_shaper_in_one_line(objective):
    cfg = RunConfig()
    cfg.train.objective, cfg.train.beta = objective, 0.0  # an autoencoder; WAE-MMD under mmd
    assert refuse_conflicts(cfg) is cfg
    cfg.train.warmup_epochs = 2
    with pytest.raises(vaekit.VaekitError, match="beta 0 leaves no KL term for the warm-up to shape"):
        refuse_conflicts(cfg)


@pytest.mark.parametrize("objective", ["elbo", "mmd", "factor", "iwae", "capacity"])
@pytest.mark.parametrize("prior", ["standard", "mixture", "vamp", "flow", "cvae", "cvae N(0, I)"])
def test_beta_0_is_refused_where_the_kl_term_alone_fits_a_learned_prior(objective, prior):
    """The prior takes no gradient at beta 0 under elbo, mmd (its prior draws carry none) and factor; the
    importance-weighted bounds (log p(z) in each weight) and the capacity objective fit it and read no beta."""
    cfg, cvae = RunConfig(), prior.startswith("cvae")
    cfg.model.family, cfg.model.prior = ("cvae", "standard") if cvae else ("vae", prior)
    cfg.train.beta, cfg.model.learned_prior = 0.0, prior != "cvae N(0, I)"
    cfg.train.objective, cfg.train.capacity_max = ("elbo", 25.0) if objective == "capacity" else (objective, 0.0)
    rows = [r for r in CONFLICTS if r[0] == "train.beta" and r[1] in ("model.prior", "model.learned_prior")]
    refused = [why for *_, clash, why in rows if clash(cfg)]
    learned = prior not in ("standard", "cvae N(0, I)") and objective in ("elbo", "mmd", "factor")
    assert len(refused) == learned and all(w.startswith("beta 0 leaves no KL term to fit the learned") for w in refused)


@pytest.mark.parametrize(
    "sets, refused",
    [
        (["model.prior_components=1"], True),  # the standard prior: unread (was accepted; 3 was refused)
        (["model.family=ladder", "model.prior_components=1"], True),
        (["model.prior=mixture", "model.prior_components=1"], False),  # one learned Gaussian
        (["model.family=cvae", "model.prior_components=1"], False),  # one Gaussian per class, as 0 gives
        (["model.family=cvae", "model.learned_prior=false", "model.prior_components=3"], True),
        (["model.family=cvae", "model.learned_prior=false", "model.prior_components=1"], False),  # fit records its 1
    ],
)
def test_prior_components_changed_where_no_mixture_reads_them_is_refused(sets, refused):
    cfg = RunConfig()
    for s in sets:
        set_value(cfg, *s.split("="))
    if not refused:
        assert refuse_conflicts(validate(cfg)) is cfg
        return
    with pytest.raises(vaekit.VaekitError, match=r"^config: model.prior_components and model.(prior|learned_prior)"):
        refuse_conflicts(validate(cfg))


@pytest.mark.parametrize("name", ["vae", "ladder", "conv"])
def test_an_old_runs_prior_components_1_the_default_then_is_taken_again(name):
    cfg = load_json_config(Path(__file__).parent / "data" / "runs-0.1" / name / "config.json")
    assert cfg.model.prior_components == 1  # written for every family when 1 was the default: vaekit train --config
    assert refuse_conflicts(validate(cfg), only=("model.prior_components",)) is cfg


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["train.tc_estimator=mss"], "train.tc_estimator and train.tc_beta cannot both take effect: it picks how"),
        (["train.tc_beta=6", "train.tc_estimator=foo"], "train.tc_estimator must be one of mws, mss, got 'foo'"),
        (["train.tc_beta=6", "train.tc_estimator=mss"], None),
        (["train.tc_beta=6"], None),
    ],
)
def test_tc_estimator_needs_beta_tcvae_and_one_of_its_names(sets, needle):
    cfg = RunConfig()
    for s in sets:
        set_value(cfg, *s.split("="))
    if needle is None:
        assert refuse_conflicts(validate(cfg)) is cfg
        return
    with pytest.raises(vaekit.VaekitError, match=needle):
        refuse_conflicts(validate(cfg))


def test_tc_estimator_foo_is_refused_by_the_cli_in_one_line_and_older_runs_read_mws(tmp_path, capsys):
    argv = ["train", "--data", "digits", "--quiet", "--set", "train.tc_beta=6", "--set", "train.tc_estimator=foo"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "train.tc_estimator must be one of mws, mss" in err and not (tmp_path / "run").exists()
    old = Path(__file__).parent / "data" / "runs-0.1" / "vae" / "config.json"
    assert "tc_estimator" not in json.loads(old.read_text())["train"]  # written before the setting
    assert load_json_config(old).train.tc_estimator == "mws"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    """A one-epoch vae run of 40 digits."""
    out = tmp_path_factory.mktemp("vae") / "run"
    vaekit.train(
        data="digits",
        limit=40,
        hidden=[4],
        latent_dim=2,
        epochs=1,
        warmup_epochs=1,
        out=out,
        progress=False,
        pictures=False,
    )  # a warm-up as the resumes below keep (a resume refuses to change it)
    return out


QUIET = dict(progress=False, pictures=False)
FIT_DATA = {"images": ((1, 4, 4), "bernoulli"), "table": ((6,), "gaussian")}  # a table's VAE: Standardized wraps it


def built(data: str) -> torch.nn.Module:
    """A VAE built in Python for ``data`` of FIT_DATA."""
    shape, likelihood = FIT_DATA[data]
    return vaekit.build_model(input_shape=shape, hidden=[4], latent_dim=2, likelihood=likelihood)


def items(data: str) -> torch.Tensor:
    """32 binary images (1, 4, 4), or 32 rows of a table of 6 columns around 5 (standardised by fit)."""
    x = torch.rand(32, *FIT_DATA[data][0], generator=torch.Generator().manual_seed(0))
    return x.round() if data == "images" else 5 + 3 * x


@pytest.fixture(scope="module")
def fit_runs(tmp_path_factory) -> dict[str, Path]:
    """One-epoch fit runs of each of FIT_DATA."""
    root = tmp_path_factory.mktemp("fit")
    for data in FIT_DATA:
        vaekit.fit(built(data), items(data), epochs=1, warmup_epochs=1, out=root / data, **QUIET)
    return {data: root / data for data in FIT_DATA}


@pytest.mark.parametrize("data", list(FIT_DATA))
@pytest.mark.parametrize(
    "key, value", [("train.gumbel_tau", 2.0), ("train.prior_epochs", 2), ("train.kl_balance", True)]
)
def test_a_resume_and_fit_hold_the_training_settings_to_the_family(key, value, data, vae_run, fit_runs):
    """The rows whose first setting is model.family, checked where the train section is (a resume, fit, fit
    resumed), for a table's VAE too: fit wraps it to standardise the columns, and it is still family vae."""
    needle = rf"^config: model.family and {key} cannot both take effect"
    with pytest.raises(vaekit.VaekitError, match=needle) as e:
        vaekit.train(out=vae_run, resume=True, epochs=2, warmup_epochs=1, **{key: value})
    assert e.value.key == key and len((vae_run / "metrics.csv").read_text().splitlines()) == 2  # was: trained on
    x = items(data)
    for out in (None, fit_runs[data]):
        with pytest.raises(vaekit.VaekitError, match=needle) as e:
            vaekit.fit(built(data), x, epochs=2, warmup_epochs=1, out=out, resume=bool(out), **QUIET, **{key: value})
        assert e.value.key == key
    assert len((fit_runs[data] / "metrics.csv").read_text().splitlines()) == 2
    assert json.loads((fit_runs[data] / "config.json").read_text())["model"]["family"] == "vae"  # was: custom


@pytest.mark.parametrize(
    "given, key",
    [({"lr": 1e-2, "train.lr": 1e-4}, "train.lr"), ({"model": "ladder", "family": "vae"}, "model.family")]
    + [
        ({"data": "digits", "spec": "mnist5k"}, "data.spec"),
        ({"binarize": "none", "data.binarize": "fixed"}, "data.binarize"),
    ],
)
def test_one_setting_given_under_two_names_is_refused_naming_both(given, key, tmp_path):
    a, b = given
    with pytest.raises(vaekit.VaekitError, match=rf"^config: {a} and {b} both set {key}: give it once"):
        vaekit.train(out=tmp_path, epochs=1, pictures=False, **given)


@pytest.mark.parametrize(
    "key, value",
    [("model.latent_dim", "2"), ("train.epochs", "1"), ("train.progress", "no"), ("train.kl_balance", "0")]
    + [("train.epochs", 1.0), ("model.hidden", 16), ("model.hidden", [16, ""])],
)
def test_python_values_keep_their_types_as_toml_values_do(key, value, tmp_path):
    """Only --set parses text; 1.0 is no int there, in TOML or in Python (as in vaekit.build_model)."""
    section, name = key.split(".")
    with pytest.raises(vaekit.VaekitError, match=rf"config: {key} must be"):
        vaekit.train(data="digits", out=tmp_path, pictures=False, **{name: value})
    with pytest.raises(vaekit.VaekitError, match=rf"config: {key} must be"):
        RunConfig.from_dict({section: {name: value}})


@pytest.mark.parametrize(
    "key, text, parsed",
    [("model.hidden", "32,,16", None), ("model.hidden", "32,16,", None), ("model.hidden", "[32, 16]", [32, 16])]
    + [("model.hidden", "[]", []), ("train.epochs", "1.0", None)],
)
def test_set_parses_lists_with_no_empty_item_and_whole_numbers_as_written(key, text, parsed):
    """--set model.hidden=32,,16 was [32, 16]; "1.0" is no int, as TOML's and Python's 1.0 are not."""
    cfg = RunConfig()
    if parsed is None:
        with pytest.raises(vaekit.VaekitError, match=rf"config: {key} must be (int|a list .*no empty item)"):
            set_value(cfg, key, text)
        return
    set_value(cfg, key, text)
    assert cfg.model.hidden == parsed
