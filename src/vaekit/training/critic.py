"""An objective's second network trained alongside the model (FactorVAE's discriminator), with its own
optimiser; its weights and moments travel in the checkpoint's extra tensors, so a resumed run is bit-identical."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.objectives_zoo import make_critic
from ..errors import VaekitError
from . import distributed

PREFIX = "critic."  # checkpoint extra tensors: critic.net.<param>, critic.optim.<i>.<name>
LR, BETAS = 1e-4, (0.5, 0.9)  # the discriminator's Adam (Kim & Mnih 2018, appendix A)


class Critic:
    """The network ``objective`` trains beside a model whose top latent level has ``latent_dim`` units, and its
    Adam; ``None`` from ``for_objective`` when the objective has none."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.opt = torch.optim.Adam(net.parameters(), lr=LR, betas=BETAS)

    @classmethod
    def for_objective(cls, objective: str, latent_dim: int, device: torch.device) -> Critic | None:
        """The objective's second network on ``device``, or None; refused under DDP, as is PIWAE's routing of
        two losses' gradients (DDP averages the gradients of one backward pass)."""
        net = make_critic(objective, latent_dim)
        if (net is not None or objective == "piwae") and distributed.world() > 1:
            raise VaekitError(
                f"train.objective {objective} does not run in several processes yet: train it in one",
                key="train.objective",
            )
        return None if net is None else cls(net.to(device))

    def pair(self) -> tuple[nn.Module, torch.optim.Optimizer]:
        return self.net, self.opt

    def tensors(self) -> dict[str, Tensor]:
        """Weights and optimiser moments as checkpoint extra tensors."""
        out = {f"{PREFIX}net.{k}": v for k, v in self.net.state_dict().items()}
        for i, state in self.opt.state_dict()["state"].items():
            out.update({f"{PREFIX}optim.{i}.{k}": v for k, v in state.items() if torch.is_tensor(v)})
        return out

    def load(self, extra: dict[str, Tensor]) -> None:
        """Restore what ``tensors`` saved (a checkpoint without it leaves the fresh network)."""
        net = {k[len(PREFIX) + 4 :]: v for k, v in extra.items() if k.startswith(PREFIX + "net.")}
        if not net:
            return
        self.net.load_state_dict(net)
        state: dict[int, dict] = {}
        for k, v in extra.items():
            if k.startswith(PREFIX + "optim."):
                i, name = k[len(PREFIX) + 6 :].split(".", 1)
                state.setdefault(int(i), {})[name] = v
        self.opt.load_state_dict({"state": state, "param_groups": self.opt.state_dict()["param_groups"]})
