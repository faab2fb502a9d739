"""Data frames as vaekit takes them: the kind of each column kept in samples, a frame of text columns encoded
by a CSV run's table, and load_dataset's refusal of data in memory (``data.user_arrays``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit

from .conftest import tiny_config

QUIET = dict(progress=False, pictures=False)


def test_a_frame_s_ints_bools_and_decimals_come_back_in_samples_as_a_csv_s_do(tmp_path):
    pd, rng = pytest.importorskip("pandas"), np.random.default_rng(0)
    df = pd.DataFrame({"h": rng.normal(170, 10, 64).round(1), "n": rng.integers(2, 6, 64), "b": rng.random(64) > 0.5})
    net = vaekit.build_model(input_shape=[3], hidden=[8], latent_dim=2, likelihood="gaussian")
    vaekit.fit(net, df, epochs=1, out=tmp_path / "run", **QUIET)
    run = vaekit.load_run(tmp_path / "run")
    kept = {c.name: (c.integer, c.decimals, c.boolean) for c in run.table.columns}
    assert kept == {"h": (False, 1, None), "n": (True, 0, None), "b": (True, 0, True)}
    rows = run.sample_table(200)
    assert rows["n"].dtype == np.int64 and rows["b"].dtype == bool
    assert set(rows["n"]) <= {2, 3, 4, 5} and np.array_equal(rows["h"], rows["h"].round(1))


@pytest.mark.parametrize("method", ["encode", "reconstruct", "evaluate"])
def test_a_frame_with_text_columns_is_encoded_by_a_csv_run_s_table(method, tmp_path):
    pd = pytest.importorskip("pandas")
    from vaekit.data import all_items
    from vaekit.data.tables import table_options

    rng = np.random.default_rng(0)
    lines = [
        f"{a},{rng.choice(['Lyon', 'Nice'])},{rng.choice(['true', 'false'])},2021-0{1 + a % 9}-1{a % 10}"
        for a in rng.integers(20, 60, 40)
    ]
    (tmp_path / "t.csv").write_text("age,city,member,joined\n" + "\n".join(lines) + "\n")
    cfg = tiny_config(str(tmp_path / "t.csv"), tmp_path / "run", epochs=1)
    run = vaekit.train(cfg, pictures=False)
    frame, items = (
        pd.read_csv(tmp_path / "t.csv"),
        all_items(cfg.data.spec, table=table_options(run.config, cfg.data.spec)),
    )
    if method == "evaluate":
        got, want = (vaekit.evaluate(run, data=d, k=2)["elbo"] for d in (frame, items))
    else:
        got, want = (getattr(run, method)(d) for d in (frame, items))
        got, want = (o if isinstance(o, torch.Tensor) else o.mean for o in (got, want))
    assert np.allclose(got, want)


@pytest.mark.parametrize("data", ["frame", "array"])
def test_load_dataset_says_in_one_line_that_data_in_memory_goes_to_fit(data):
    x = pytest.importorskip("pandas").DataFrame({"a": [1.0, 2.0]}) if data == "frame" else np.zeros((2, 2))
    with pytest.raises(vaekit.VaekitError, match=r"load_dataset reads a data spec .* vaekit\.fit\(model, data\)") as e:
        vaekit.load_dataset(x)
    assert "\n" not in str(e.value)
