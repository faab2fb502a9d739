"""tools/bench_smoke.py: a smoke run for every benchmark entry point, and a failed one named with a non-zero exit."""

from __future__ import annotations

from pathlib import Path

from tools import bench_smoke

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_entry_point_has_a_smoke_run():
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if "__main__" in p.read_text()}
    assert scripts - {"peer_worker"} == {name.split()[0] for name in bench_smoke.SMOKE}  # the worker: peer.py's


def test_a_failed_run_is_named_with_its_log_and_exit_1(tmp_path, monkeypatch, capsys):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "ok.py").write_text("import sys\nprint('wrote', sys.argv[1:])\n")
    (tmp_path / "benchmarks" / "bad.py").write_text("raise SystemExit('bad: no data')\n")
    monkeypatch.setattr(bench_smoke, "ROOT", tmp_path)
    monkeypatch.setattr(bench_smoke, "SMOKE", {"ok": ["--json", "{out}/ok.json"], "bad": [], "ok --more": []})
    assert bench_smoke.main(["--out", str(tmp_path / "o")]) == 1
    out, err = capsys.readouterr()
    rows = [line.split(" | ") for line in out.splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [("| ok", "0"), ("| bad", "1"), ("| ok --more", "0")]
    assert f"{tmp_path}/o/ok.json" in rows[0][3] and "'--more'" in rows[2][3] and rows[1][3] == "bad: no data |"
    assert err.strip() == f"bad failed: {tmp_path / 'o' / 'logs' / 'bad.log'}"
    assert bench_smoke.main(["--out", str(tmp_path / "o"), "ok"]) == 0
