"""What the Python API says of shapes: items of another shape than the model's refused by ``iwae_bound`` and
``elbo`` as ``anomaly_scores`` refuses them, the decoder's own output shape in its refusal, a user's p(x|z) at
the end of its support refused by the scores as by fit, integer scalars of numpy and torch taken as sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

import vaekit
from vaekit.core.likelihoods import Likelihood
from vaekit.evaluation.scores import anomaly_scores

from .test_own_models import BetaVAE

QUIET = dict(epochs=1, progress=False, pictures=False)


def grey(**kw) -> vaekit.VAE:
    """A VAE of (1, 8, 8) items: its networks flatten and unflatten."""
    dec = nn.Sequential(nn.Linear(2, 64), nn.Unflatten(1, (1, 8, 8)))
    return vaekit.VAE(nn.Flatten(), dec, latent_dim=2, **{"likelihood": "bernoulli", **kw})


def items(*shape: int) -> torch.Tensor:
    return (torch.rand(*shape) > 0.5).float()


@pytest.mark.parametrize(
    "shape, more",
    [((4, 8, 8), ""), ((3, 1, 7, 7), ""), ((1, 8, 8), "; one item is x[None], with its batch axis")],
)
def test_iwae_bound_and_elbo_refuse_items_of_another_shape_as_the_scores_do(shape, more):
    model, x = grey(input_shape=(1, 8, 8)), items(*shape)
    said = rf"x must be \(N, 1, 8, 8\): items of the model's shape \(1, 8, 8\); got {re.escape(str(shape))}"
    with pytest.raises(vaekit.VaekitError, match=rf"^iwae_bound: {said}{re.escape(more)}$"):
        vaekit.iwae_bound(model, x, k=5)
    with pytest.raises(vaekit.VaekitError, match=rf"^elbo: {said}{re.escape(more)}$"):
        vaekit.elbo(model(items(shape[0], 1, 8, 8)), x)  # p(x|z) of (1, 8, 8) items, x of another shape
    if len(shape) == 3:  # the scores read grey (N, 8, 8) as (N, 1, 8, 8): (N, 7, 7) refused by the same rule
        with pytest.raises(vaekit.VaekitError, match=r"^x must be \(N, 1, 8, 8\): .*; got \(2, 7, 7\)$"):
            anomaly_scores(model, items(2, 7, 7).numpy(), "neg_elbo")
    assert vaekit.iwae_bound(model, items(2, 1, 8, 8), k=5).isfinite().all()


def test_a_model_that_states_no_item_shape_is_not_checked():
    model, x = BetaVAE(), torch.rand(3, 16) * 0.8 + 0.1  # no input_shape: read as before
    assert vaekit.iwae_bound(model, x, k=4).shape == (3,)
    px = Normal(torch.zeros(3, 16), torch.ones(3, 16))  # declares no event dims: log_prob per element, as before
    out = vaekit.VAEOutput(px, [Independent(px, 1)], [Independent(px, 1)], [torch.zeros(3, 16)])
    assert vaekit.elbo(out, x)["rec"].shape == (3, 16)


def test_the_decoder_refusal_names_the_decoder_s_own_shape_and_how_to_keep_channels_last_items():
    enc, dec = nn.Sequential(nn.Linear(37, 8), nn.ReLU()), nn.Linear(4, 36)
    with pytest.raises(vaekit.VaekitError, match=r"^the decoder gives shape \(2, 36\); .* needs \(B, 37\)$"):
        vaekit.VAE(enc, dec, latent_dim=4, likelihood="gaussian", input_shape=(37,))
    x = np.random.default_rng(0).random((8, 10, 10, 4)).astype(np.float32)  # a user's (H, W, features) grid
    grid = nn.Sequential(nn.Linear(2, 400), nn.Unflatten(1, (10, 10, 4)))
    with pytest.raises(vaekit.VaekitError) as e:
        vaekit.fit(vaekit.VAE(nn.Flatten(), grid, latent_dim=2, likelihood="cbernoulli"), x, **QUIET)
    assert str(e.value).startswith("the decoder gives shape (2, 10, 10, 4); the cbernoulli likelihood of items (4,")
    assert str(e.value).endswith(
        "moved from channels-last to (4, 10, 10) (fit's note), input_shape=(10, 10, 4) keeps them as given"
    )


def test_the_scores_refuse_items_at_the_end_of_a_user_s_p_x_z_support_as_fit_does():
    x = np.random.default_rng(0).beta(2, 5, (4, 16)).astype(np.float32)
    assert np.isfinite(anomaly_scores(BetaVAE(), x, "neg_elbo")["neg_elbo"]).all()
    x[1, 3] = x[2, 0] = 1.0  # a Beta's log-density is -inf or NaN at 1
    said = "data items: item 1 has value 1 (and 1 more item), at the end of the Beta likelihood's support"
    with pytest.raises(vaekit.VaekitError, match=rf"^{re.escape(said)}, where its log-density is not finite"):
        anomaly_scores(BetaVAE(), x, ["neg_elbo", "iwae_nll"])


def test_sizes_take_integer_scalars_of_numpy_and_torch_and_the_nets_must_be_modules():
    enc, dec = nn.Sequential(nn.Linear(37, 8), nn.ReLU()), nn.Linear(4, 37)
    for n in (np.int64(4), np.int32(4), torch.tensor(4)):
        model = vaekit.VAE(enc, dec, latent_dim=n, likelihood="gaussian", input_shape=(37,))
        assert type(model.latent_dim) is int and model.latent_dims == [4]
    cvae = vaekit.ConditionalVAE(nn.Linear(37, 4), nn.Linear(5, 37), latent_dim=np.int64(2), num_classes=np.int64(3))
    assert (type(cvae.num_classes), cvae.label_features, type(cvae.latent_dim)) == (int, 3, int)
    for bad in (True, 4.0, torch.tensor(4.0), np.bool_(True)):
        with pytest.raises(vaekit.VaekitError, match=r"^latent_dim must be a positive integer, got "):
            vaekit.VAE(enc, dec, latent_dim=bad)
    with pytest.raises(vaekit.VaekitError, match=r"^the encoder must be a torch.nn.Module, got function: wrap"):
        vaekit.VAE(lambda x: x, dec, latent_dim=4)


def test_the_docstring_states_every_decoder_shape_and_auto_says_it_chose():
    doc = " ".join(vaekit.VAE.__doc__.split())
    assert "(B, K (C + 2), C, H, W) for discretized_logistic" in doc and '"auto" leaves the choice to ``fit``' in doc
    for shape, said in (((3, 8, 8), "(B, 25, 3, H, W) for colour"), ((1, 8, 8), "(B, 15, 1, H, W) for grey")):
        assert Likelihood("discretized_logistic", shape).n_params == int(said[4:6]) and said in doc
    x = np.random.default_rng(0).integers(0, 256, (8, 1, 8, 8)).astype(np.uint8)  # 8-bit: discretized_logistic
    with pytest.raises(vaekit.VaekitError, match=r"needs \(B, 15, 1, 8, 8\); likelihood 'auto' chose discretized_l"):
        vaekit.fit(grey(likelihood="auto"), x, **QUIET)
    with pytest.raises(vaekit.VaekitError, match=r"^likelihood 'auto' is chosen from the data by vaekit.fit; name"):
        grey(likelihood="auto", input_shape=(1, 8, 8))
