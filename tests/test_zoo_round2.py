"""The zoo's second round: a hierarchy's conditional priors at beta 0 and the capacity objective's gamma 0,
beta-TCVAE against a prior that does not factorise, and active units of the discrete codes (gumbel, vq)."""

from __future__ import annotations

import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig, RunConfig, refuse_conflicts
from vaekit.errors import VaekitError
from vaekit.evaluation.metrics import active_codes
from vaekit.models import build_model
from vaekit.runs import Run

from .conftest import train_argv

LADDER = {"family": "ladder", "latent_dims": [4, 2], "hidden": [16]}
DEEP = {"family": "deep", "deep_groups": [1, 1, 1, 0], "deep_width": 8, "deep_cell_width": 8}
HIERARCHIES = {
    "ladder-topdown": LADDER,
    "ladder-precision": LADDER | {"ladder_posterior": "precision"},
    "ladder-one-level": LADDER | {"latent_dims": [4]},
    "deep": DEEP,
    "deep-residual": DEEP | {"residual_posterior": True},
}


def digits(n: int = 200) -> torch.Tensor:
    """The first n test items of the built-in digits, binarised: (n, 1, 8, 8)."""
    return (vaekit.load_dataset("digits").test.x[:n] > 0.5).float()


def refused(model: dict, **train) -> str | None:
    """refuse_conflicts' message for a config of ``model`` settings and ``train`` settings, or None."""
    cfg = RunConfig(model=ModelConfig(input_shape=[1, 8, 8], likelihood="bernoulli", **model))
    for k, v in train.items():
        setattr(cfg.train, k, v)
    try:
        refuse_conflicts(cfg)
    except VaekitError as e:
        return str(e)
    return None


def prior_only(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """Parameters that move the priors p(z_l|.) but get no gradient from the beta-0 ELBO on x (B, 1, 8, 8)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    out = model(x)
    loss = vaekit.elbo(out, x, beta=0.0)["loss"]
    prior = sum(p.mean.sum() + p.stddev.sum() for p in out.pz)
    if not prior.requires_grad:  # N(0, I) alone: no parameters
        return []
    g_loss = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    g_prior = torch.autograd.grad(prior, params, allow_unused=True)
    moved = [b is not None and bool(b.abs().sum() > 0) for b in g_prior]
    dead = [a is None or bool(a.abs().sum() == 0) for a in g_loss]
    return [n for (n, _), m, d in zip(named, moved, dead) if m and d]


@pytest.mark.parametrize("name", list(HIERARCHIES))
def test_beta_0_is_refused_exactly_where_a_hierarchy_s_priors_would_not_train(name):
    settings = HIERARCHIES[name]
    model = build_model(ModelConfig(input_shape=[1, 8, 8], likelihood="bernoulli", **settings))
    untrained = prior_only(model, digits(32))
    assert bool(untrained) == (name in ("ladder-topdown", "deep"))  # down.0.1; every group's to_p
    why = refused(settings, beta=0.0)
    if untrained:
        assert why is not None and "train.beta and model.family" in why and "p(z_l|z_>l)" in why
    else:
        assert why is None
    assert refused(settings, beta=0.0, objective="iwae") != why  # the bounds fit p through log p(z), read no beta


def test_capacity_with_gamma_0_is_refused_as_beta_0_is():
    for model in ({}, {"prior": "mixture"}, LADDER):
        why = refused(model, capacity_max=5.0, gamma=0.0)
        assert why is not None and "train.gamma and train.capacity_max" in why
        assert refused(model, capacity_max=5.0) is None  # gamma 1000 fits the prior through |KL - C|


@pytest.mark.parametrize("prior", ["mixture", "vamp", "flow"])
def test_tc_beta_is_refused_with_a_prior_that_does_not_factorise(prior, tmp_path, capsys):
    why = refused({"prior": prior}, tc_beta=6.0)
    assert why is not None and "train.tc_beta and model.prior" in why and "sum_d KL(q(z_d) || p(z_d))" in why
    flags = ["--set", f"model.prior={prior}", "--set", "train.tc_beta=6", "--set", "train.dimwise_warmup_epochs=1"]
    assert main(train_argv("digits", tmp_path / "run", *flags)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "train.tc_beta and model.prior" in err and not (tmp_path / "run").exists()


def test_tc_beta_keeps_the_standard_prior_and_a_cvae_s_gaussian_p_z_y():
    assert refused({}, tc_beta=6.0) is None
    assert refused({"family": "cvae", "num_classes": 10}, tc_beta=6.0) is None
    why = refused({"family": "cvae", "num_classes": 10, "prior_components": 3}, tc_beta=6.0)
    assert why is not None and "train.tc_beta and model.prior_components" in why


def test_vq_active_units_do_not_change_with_the_codebook_s_scale():
    cfg = RunConfig(model=ModelConfig(family="vq", input_shape=[1, 8, 8], likelihood="bernoulli", hidden=[16]))
    cfg.model.latent_dim, cfg.model.codebook_size, cfg.model.code_dim = 4, 16, 3
    run, x = Run(None, cfg, build_model(cfg.model).eval()), digits()
    before = vaekit.evaluate(run, x, k=2)
    m = run.model
    with torch.no_grad():  # the same model: codes and encoder output x 0.05, the decoder's first layer / 0.05
        for t in (m.encoder[1].weight, m.encoder[1].bias, m.codebook):
            t.mul_(0.05)
        m.decoder[1].net[0].weight.div_(0.05)
    after = vaekit.evaluate(run, x, k=2)
    assert after["nll"] == pytest.approx(before["nll"], rel=1e-4)
    assert after["active_units"] == before["active_units"]
    au = before["active_units"]
    assert 0 < au["total"] <= 4 and au["per_level"] == [au["total"]]  # at most the grid's 1 x 4 positions


def test_gumbel_active_units_count_variables_not_one_hot_coordinates():
    cfg = RunConfig(model=ModelConfig(family="gumbel", input_shape=[1, 8, 8], likelihood="bernoulli", hidden=[16]))
    cfg.model.latent_dim, cfg.model.categories = 3, 8
    model = build_model(cfg.model).eval()
    with torch.no_grad():
        model.to_logits.weight.mul_(30)  # near one-hot class probabilities that vary with x
    au = vaekit.evaluate(Run(None, cfg, model), digits(), k=2)["active_units"]
    assert au["total"] == 3 and au["per_level"] == [3]  # 3 variables, not the 24 coordinates' count


def test_active_codes_sum_each_variable_s_category_variances():
    probs = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])  # (N 2, U 2, K 2)
    assert active_codes(probs).tolist() == [True, False]
    index = torch.tensor([[0, 3], [1, 3], [2, 3]])  # (N 3, U 2): position 0 uses 3 codes, position 1 one
    assert active_codes(index).tolist() == [True, False]
    rare = torch.zeros(1000, 1, dtype=torch.long)
    rare[:3] = 1  # 0.3% of the items on another code: impurity 0.006 < 0.01
    assert active_codes(rare).tolist() == [False]
    rare[:10] = 1  # 1%: 0.0198
    assert active_codes(rare).tolist() == [True]
