"""A resume with nothing to train (the run has all its epochs) leaves its folder as it is: no config.json with
settings never used, no event file, no pictures."""

from __future__ import annotations

from pathlib import Path

import vaekit

from .conftest import tiny_config


def listing(run: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of ``run``: its mtime (ns) and bytes."""
    return {str(p.relative_to(run)): (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}


def test_a_resume_with_nothing_to_train_writes_nothing(tiny_images, tmp_path, capsys):
    from vaekit.cli import main

    cfg = tiny_config(str(tiny_images), tmp_path / "run", epochs=1)
    run = vaekit.train(cfg).path  # pictures and event files included, as ``vaekit train`` writes them
    before = listing(run)
    assert main(["train", "--resume", str(run), "--epochs", "1", "--lr", "1e-5"]) == 0
    assert "nothing to train" in capsys.readouterr().out
    assert listing(run) == before  # config.json keeps the lr the run trained with
    again = vaekit.train(resume=True, out=str(run), lr=1e-5, pictures=True)
    assert listing(run) == before and len(again.history) == 1 and again.config.train.lr == cfg.train.lr  # as it stands
