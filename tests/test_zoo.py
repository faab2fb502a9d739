"""The zoo's axes: every prior, posterior and objective builds, trains, moves the loss, saves and loads; the
importance-weighted identities; PIWAE's gradient routing; FactorVAE's discriminator in checkpoints and resume."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import CHOICES, RunConfig, refuse_conflicts, set_value, validate
from vaekit.core.objectives_zoo import OBJECTIVES, ObjectiveSettings, backward, log_weight_samples, mmd, objective
from vaekit.models.catalog import axes_table
from vaekit.models.posteriors import POSTERIORS
from vaekit.models.priors import PRIORS
from vaekit.training.checkpoint import read_tensors
from vaekit.training.fit import start_from_data

QUIET = dict(progress=False, pictures=False)
SMALL = dict(
    likelihood="bernoulli",
    hidden=[16],
    latent_dim=3,
    pseudo_inputs=6,
    flow_hidden=[8, 8],
    flow_transforms=2,
    channels=[4],
)


def model(shape=(1, 5, 6), **settings) -> torch.nn.Module:
    """``settings`` over SMALL, less the SMALL ones this model does not read (build_model refuses those)."""
    small = {k: v for k, v in SMALL.items() if k not in settings}
    while True:
        torch.manual_seed(0)
        try:
            return vaekit.build_model(input_shape=list(shape), **small, **settings)
        except vaekit.VaekitError as e:
            if (e.key or "").removeprefix("model.") not in small:
                raise
            del small[e.key.removeprefix("model.")]


def batch(n=12, shape=(1, 5, 6), seed=0) -> torch.Tensor:
    return (torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def loss(m, x, name="elbo", seed=1, **s) -> dict:
    torch.manual_seed(seed)
    return objective(name)(m, x, None, ObjectiveSettings(**s))


def test_the_config_names_every_registry_entry_and_vaekit_models_lists_them():
    assert set(CHOICES["model.prior"]) == set(PRIORS) and set(CHOICES["model.posterior"]) == set(POSTERIORS)
    assert set(CHOICES["train.objective"]) == set(OBJECTIVES)
    table = axes_table()
    assert all(f"| {name} |" in table for name in [*PRIORS, *POSTERIORS, *OBJECTIVES, "vae", "bernoulli"])


@pytest.mark.parametrize("net", ["mlp", "conv"])
@pytest.mark.parametrize(
    "prior,posterior", [(p, "gaussian") for p in PRIORS] + [("vamp", "iaf"), ("flow", "nsf"), ("standard", "iaf")]
)
def test_each_prior_and_posterior_trains_its_own_parameters_samples_and_bounds(prior, posterior, net):
    m, x = model(prior=prior, posterior=posterior, net=net), batch()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    own = [p for name in ("pz_module", "qz_module") for p in getattr(m, name).parameters()]
    assert bool(own) == ((prior, posterior) != ("standard", "gaussian"))
    before = [p.detach().clone() for p in own]
    for _ in range(2):
        terms = loss(m, x)
        opt.zero_grad()
        terms["loss"].backward()
        assert math.isfinite(terms["loss"].item())
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in own)
        opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, own))  # the prior's / posterior's terms move
    assert m.generate(4, temperature=0.5).mean.shape == (4, *x.shape[1:])
    assert torch.isfinite(vaekit.iwae_bound(m, x, k=6)).all()
    qz = m.encode(x)
    z = qz.rsample()
    assert qz.batch_shape == (12,) and qz.event_shape == (3,)
    assert torch.allclose(qz.log_prob(z), qz.log_prob(z.clone()), atol=1e-4)  # the kept log q is the flow's


def test_the_vamp_prior_is_the_mean_of_the_posteriors_of_its_pseudo_inputs_in_the_data_range():
    m = model(prior="vamp")
    z = torch.randn(7, 3)
    u = m.pz_module.pseudo_inputs()
    assert u.shape == (6, 1, 5, 6) and u.min() >= 0 and u.max() <= 1
    manual = m.encode(u).log_prob(z.unsqueeze(1)).logsumexp(1) - math.log(6)  # (7, 6) -> (7,)
    assert torch.allclose(m.prior().log_prob(z), manual, atol=1e-5)
    m.pz_module.init_from(batch(4))
    assert torch.equal(m.pz_module.pseudo_inputs()[:4], batch(4))


@pytest.mark.parametrize("init", ["data", "noise"])
def test_a_new_fit_starts_the_pseudo_inputs_at_training_items_unless_told_noise(init):
    m, x = model(prior="vamp", pseudo_init=init), batch(40, seed=3)
    noise = m.pz_module.pseudo_inputs().clone()
    start_from_data(m, SimpleNamespace(train=SimpleNamespace(x=x)), seed=0, device=torch.device("cpu"))
    u = m.pz_module.pseudo_inputs()
    rows = (u.flatten(1)[:, None] == x.flatten(1)[None]).all(-1).any(1)  # (6,): each u_k a training item
    assert rows.all() if init == "data" else torch.equal(u, noise) and (u - 0.05).abs().max() < 0.06


def test_the_importance_weighted_identities():
    m, x = model(prior="mixture"), batch()  # no analytic KL: every objective uses the same one-sample terms
    elbo_loss = loss(m, x)["loss"]
    assert torch.allclose(loss(m, x, "iwae", iw_samples=1)["loss"], elbo_loss, atol=1e-5)
    iwae, ciwae = loss(m, x, "iwae", iw_samples=4)["loss"], loss(m, x, "ciwae", iw_samples=4, ciwae_beta=0.0)
    assert torch.allclose(ciwae["loss"], iwae) and iwae < elbo_loss  # a tighter bound on this batch
    mean_elbo = loss(m, x, "miwae", iw_samples=1, iw_groups=4)["loss"]  # M = 4 groups of one: the 4-sample ELBO
    assert torch.allclose(loss(m, x, "ciwae", iw_samples=4, ciwae_beta=1.0)["loss"], mean_elbo)
    piwae = loss(m, x, "piwae", iw_samples=2, iw_groups=2)
    assert torch.allclose(piwae["loss"], iwae)
    assert torch.allclose(piwae["encoder_loss"], loss(m, x, "miwae", iw_samples=2, iw_groups=2)["loss"])


def test_piwae_trains_the_encoder_on_miwae_and_the_decoder_on_iwae():
    m, x = model(), batch()
    params = list(m.parameters())
    backward(loss(m, x, "piwae", iw_samples=2, iw_groups=2), params)
    routed = {n: p.grad.clone() for n, p in m.named_parameters()}
    for name, parts in (("miwae", ("encoder.", "to_qz.")), ("iwae", ("decoder.",))):
        m.zero_grad()
        loss(m, x, name, iw_samples=2 if name == "miwae" else 4, iw_groups=2)["loss"].backward()
        for n, p in m.named_parameters():
            if n.startswith(parts):
                assert torch.allclose(routed[n], p.grad, atol=1e-6), n


@pytest.mark.parametrize(
    "name,setting,values",
    [
        ("elbo", "beta", (1.0, 3.0)),
        ("iwae", "iw_samples", (1, 5)),
        ("ciwae", "ciwae_beta", (0.0, 1.0)),
        ("mmd", "mmd_weight", (0, 10)),
        ("factor", "factor_gamma", (0, 10)),
        ("miwae", "iw_groups", (1, 3)),
    ],
)
def test_each_objective_setting_moves_the_loss(name, setting, values):
    m, x = model(), batch()
    critic = vaekit.core.objectives_zoo.make_critic(name, 3)
    a, b = (loss(m, x, name, critic=critic, **{setting: v})["loss"] for v in values)
    assert math.isfinite(a.item()) and math.isfinite(b.item()) and not torch.allclose(a, b)


def test_mmd_is_near_zero_for_one_distribution_and_large_for_two():
    z = torch.randn(400, 3, generator=torch.Generator().manual_seed(0))
    for kernel in ("imq", "rbf"):
        assert abs(mmd(z[:200], z[200:], kernel)) < 0.05 < mmd(z[:200], z[200:] + 2, kernel)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_objective_trains_a_run_with_finite_losses(name, tmp_path):
    run = vaekit.fit(
        model(prior="mixture"),
        batch(48).numpy(),
        epochs=1,
        batch_size=16,
        objective=name,
        out=tmp_path / "run",
        **QUIET,
    )
    assert all(math.isfinite(run.history[-1][k]) for k in ("train_loss", "val_loss"))
    loaded = vaekit.load_run(tmp_path / "run", device=str(run.device))
    x = batch(5)
    assert torch.equal(loaded.encode(x).mean, run.encode(x).mean)  # model.json rebuilds the prior


def test_the_factor_discriminator_learns_is_checkpointed_and_resumes_bit_for_bit(tmp_path):
    x = batch(40).numpy()

    def fit(out, **kw):
        return vaekit.fit(
            model(posterior="iaf"),
            x,
            batch_size=16,
            objective="factor",
            factor_gamma=5.0,
            out=tmp_path / out,
            device="cpu",  # bit for bit: CUDA's kernels need not be deterministic
            **QUIET | kw,
        )

    straight = fit("a", epochs=2)
    fit("b", epochs=1)
    first = read_tensors(tmp_path / "b" / "checkpoint.safetensors")[0]
    resumed = fit("b", epochs=2, resume=True)
    last = [read_tensors(tmp_path / r / "checkpoint.safetensors")[0] for r in ("a", "b")]
    critic = [k for k in last[0] if k.startswith("extra.critic.")]
    assert any(k.startswith("extra.critic.optim.") for k in critic) and any(".net." in k for k in critic)
    assert any(not torch.equal(first[k], last[1][k]) for k in critic if ".net." in k)  # it learns
    assert all(torch.equal(last[0][k], last[1][k]) for k in critic)
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in straight.model.state_dict().items())


def test_a_run_from_settings_records_and_rebuilds_its_axes(tiny_images, tmp_path):
    cfg = RunConfig(out=str(tmp_path / "run"))
    for key, value in {
        "data.spec": str(tiny_images),
        "model.hidden": [16],
        "model.latent_dim": 3,
        "model.prior": "flow",
        "model.posterior": "nsf",
        "train.objective": "iwae",
        "train.iw_samples": 3,
        "train.epochs": 1,
        "train.progress": False,
    }.items():
        set_value(cfg, key, value)
    run = vaekit.train(cfg, pictures=False)
    loaded = vaekit.load_run(run.path, device=str(run.device))
    assert loaded.config.model.prior == "flow" and loaded.config.train.objective == "iwae"
    x = torch.rand(3, 1, 9, 11)
    assert torch.allclose(loaded.encode(x).mean, run.encode(x).mean)


@pytest.mark.parametrize(
    "settings,named",
    [
        ({"model.prior": "vamp", "model.family": "ladder"}, "model.prior and model.family"),
        ({"train.tc_beta": 1.0, "model.posterior": "iaf"}, "train.tc_beta and model.posterior"),
        ({"train.objective": "iwae", "train.free_bits": 0.5}, "train.free_bits and train.objective"),
        ({"train.objective": "mmd", "train.capacity_max": 5.0}, "train.capacity_max and train.objective"),
        ({"train.objective": "factor", "train.tc_beta": 2.0}, "train.tc_beta and train.objective"),
        ({"train.objective": "vq" and "elbo", "model.family": "vq", "model.prior": "mixture"}, "model.prior"),
        ({"train.mmd_weight": 3.0}, "train.mmd_weight and train.objective"),
        ({"train.objective": "iwae", "train.beta": 2.0}, "train.beta and train.objective"),
        ({"model.pseudo_inputs": 10}, "model.pseudo_inputs and model.prior"),
    ],
)
def test_combinations_that_cannot_take_effect_are_refused_in_one_line(settings, named):
    cfg = RunConfig()
    for key, value in settings.items():
        set_value(cfg, key, value)
    with pytest.raises(vaekit.VaekitError) as e:
        refuse_conflicts(validate(cfg))
    assert named in str(e.value) and "\n" not in str(e.value)


def test_the_cli_takes_the_axes_as_flags_and_refuses_in_one_line(tiny_images, tmp_path, capsys):
    args = ["train", "--data", str(tiny_images), "--epochs", "1", "--hidden", "8", "--quiet", "--out"]
    assert (
        main(
            [
                *args,
                str(tmp_path / "a"),
                "--prior",
                "vamp",
                "--objective",
                "ciwae",
                "--iw-samples",
                "2",
                "--set",
                "model.pseudo_inputs=5",
            ]
        )
        == 0
    )
    assert vaekit.load_run(tmp_path / "a").config.model.pseudo_inputs == 5
    assert main([*args, str(tmp_path / "b"), "--prior", "vamp", "--model", "ladder"]) != 0
    assert capsys.readouterr().err.strip().count("\n") == 0
    with pytest.raises(vaekit.VaekitError, match="setting of the model"):
        vaekit.fit(model(), np.zeros((8, 1, 5, 6), np.float32), prior="vamp")


@pytest.mark.parametrize("family", ["vae", "cvae"])
def test_one_encoder_pass_gives_the_log_weights_of_the_forward_pass_over_the_repeated_batch(family):
    m = model(family=family, **({"num_classes": 3} if family == "cvae" else {"num_classes": 0, "prior": "flow"}))
    x, y = batch(), None
    y = torch.arange(12) % 3 if family == "cvae" else None
    s = ObjectiveSettings()
    torch.manual_seed(2)
    fast = log_weight_samples(m, x, y, 3, s)[0]
    m.plain_forward = False  # the generic path: forward over x repeated 3 times
    torch.manual_seed(2)
    assert torch.allclose(log_weight_samples(m, x, y, 3, s)[0], fast, atol=1e-4)
