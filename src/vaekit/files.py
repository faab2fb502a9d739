"""The run folder's file names, each defined once: what training writes, and what the later verbs derive."""

from __future__ import annotations

import json
import re
from pathlib import Path

# written by training
CONFIG = "config.json"  # the RunConfig (data, model, train settings)
MODEL = "model.json"  # the model's class and init arguments (models.spec), when they rebuild it
STANDARDIZE = "standardize.json"  # per-column loc and scale of a table (also in the weights), for reading
TABLE = "table.json"  # a CSV's columns: names, kinds, categories, gap fills, loc and scale
WEIGHTS = "model.safetensors"  # the best weights (by validation loss)
CHECKPOINT = "checkpoint.safetensors"
PREVIOUS_CHECKPOINT = "checkpoint.prev.safetensors"  # the one before: a damaged newest one still resumes
METRICS = "metrics.csv"  # one row per epoch
PRIOR_METRICS = "prior_metrics.csv"  # a two-stage model's (vq): one row per epoch of its prior's fit
SKIPPED = "skipped.json"  # image files left out as unreadable (data.skip_unreadable), when any
CLASSES = "classes.json"  # the class names of a run's labels, label 0 first, when its data names them
COUNTS = "class_counts.json"  # a conditional run's training items of each class, label 0 first
SAMPLES, RECONSTRUCTIONS, LOSS = "samples.png", "reconstructions.png", "loss.png"
# derived later by the verbs of the same names
EVAL = "eval.json"
# globs: what the verbs derived from data other than the run's own (eval-DATA-SPLIT.json, quality-..., report-...)
OTHERS = ("eval-*.json", "quality-*.json", "report-*.html")
REPORT = "report.html"
INTERPOLATION, TRAVERSALS, LATENT_MAP, CURVES = "interpolation.png", "traversals.png", "latent-map.png", "curves.png"
DISENTANGLE, DISENTANGLE_FIGURE = "disentangle.json", "disentangle-traversals.png"
ENCODER_ONNX, DECODER_ONNX = "encoder.onnx", "decoder.onnx"
QUALITY = "quality.json"  # FID, KID, precision, recall of the samples (tables: KS, TVD, correlations, TSTR)
SCALES = "scales.json"  # beside a run per scale (scale-<i>): a multi-scale VAEAnomalyDetector's factors, statistics
SAMPLER_WEIGHTS, SAMPLER_SETTINGS = "sampler-{}.safetensors", "sampler-{}.json"  # a post-hoc sampler, by name

TRAINING_FILES = (
    CONFIG,
    MODEL,
    STANDARDIZE,
    TABLE,
    WEIGHTS,
    CHECKPOINT,
    PREVIOUS_CHECKPOINT,
    METRICS,
    PRIOR_METRICS,
    SAMPLES,
    RECONSTRUCTIONS,
    LOSS,
    SKIPPED,
    CLASSES,
    COUNTS,
)
DERIVED_FILES = (
    EVAL,
    REPORT,
    INTERPOLATION,
    TRAVERSALS,
    LATENT_MAP,
    CURVES,
    DISENTANGLE,
    DISENTANGLE_FIGURE,
    ENCODER_ONNX,
    DECODER_ONNX,
    QUALITY,
)
TENSORBOARD_EVENTS = "events.out.tfevents.*"  # a glob: the TensorBoard callback's files
SAMPLER_FILES = (SAMPLER_WEIGHTS.format("*"), SAMPLER_SETTINGS.format("*"))  # globs: every post-hoc sampler's
# the SHA-256 of the weights a derived file came from: a JSON key, a PNG text chunk, an HTML meta tag, ONNX metadata
DIGEST = "vaekit_weights_sha256"


def others(run: Path) -> list[Path]:
    """The files in ``run`` that the verbs derived from data other than the run's own (``OTHERS``), sorted."""
    return sorted(p for pattern in OTHERS for p in run.glob(pattern))


def checkpointed(run: Path) -> bool:
    """Whether ``run`` holds a checkpoint to resume from (the newest, or the one before it)."""
    return any((run / name).is_file() for name in (CHECKPOINT, PREVIOUS_CHECKPOINT))


def stamp(path: Path) -> str | None:
    """The weights digest a file vaekit wrote records (a JSON key, a PNG text chunk, an HTML meta tag, ONNX
    metadata), or None: not such a file, unreadable, or not vaekit's."""
    try:
        suffix = path.suffix.lower()
        if suffix == ".json":
            found = json.loads(path.read_text(encoding="utf-8")).get(DIGEST)
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as im:
                found = getattr(im, "text", {}).get(DIGEST)
        elif suffix == ".html":
            match = re.search(rf'<meta name="{DIGEST}" content="([0-9a-f]+)"', path.read_text(encoding="utf-8"))
            found = match and match.group(1)
        elif suffix == ".onnx":  # metadata_props entry {key, value}: protobuf fields 1 and 2, read as bytes
            raw = re.search(rb"\x0a\x15" + DIGEST.encode() + rb"\x12\x40([0-9a-f]{64})", path.read_bytes())
            found = raw.group(1).decode() if raw else None
        else:
            return None
    except Exception:  # noqa: BLE001 - unreadable or of another kind: it records nothing we can trust
        return None
    return found if isinstance(found, str) else None
