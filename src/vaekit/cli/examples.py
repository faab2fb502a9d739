"""The example command lines that end the help pages of the verbs on a run's pictures and pages (``verb``'s
``examples``): kept here, so the verbs' modules stay short."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "evaluate": ("vaekit evaluate runs/d", "vaekit evaluate runs/d --data new.npy --iw-samples 100 --json"),
    "interpolate": (
        "vaekit interpolate runs/d --items 3,17 --out path.png",
        "vaekit interpolate runs/d --data new.npy --steps 12",
    ),
    "traverse": (
        "vaekit traverse runs/d --dims 0,3,5",
        "vaekit traverse runs/d --item 7 --range 2",
        "vaekit traverse runs/cvae --label 3",
    ),
    "latent-map": (
        "vaekit latent-map runs/d --out map.png",
        "vaekit latent-map runs/d --split train --limit 5000",
    ),
    "curves": ("vaekit curves runs/d", "vaekit curves runs/d --out losses.png"),
    "report": ("vaekit report runs/d", "vaekit report runs/d --iw-samples 1000 --limit 5000 --out d.html"),
    "explore": (
        "vaekit explore runs/d",
        "vaekit explore runs/d --port 0 --data new.npy",
        "vaekit explore runs/d --device auto",
    ),
}
