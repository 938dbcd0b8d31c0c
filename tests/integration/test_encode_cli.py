"""`avrec encode`'s cluster options: a wrong address or worker count is one line, exit 2,
and nothing is encoded."""

from __future__ import annotations

from typer.testing import CliRunner

from avrec.cli import app


def test_encode_bad_cluster_options_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("AVREC_DASK_SCHEDULER", raising=False)
    monkeypatch.setenv("AVREC_HOME", str(tmp_path / "home"))
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "items.csv").write_text("item_id,title\ni0,A\ni1,B\n")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CliRunner().invoke(app, ["ingest", str(folder), "--database-url", url]).exit_code == 0
    base = ["encode", "--modalities", "text", "--database-url", url, "--no-sentiment"]
    for extra, message in (
        (["--cluster", "my-laptop"], "scheduler address"),
        (["--workers", "0"], "at least 1"),
        (["--chunk-items", "0"], "--chunk-items"),
    ):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
    assert not (tmp_path / "home" / "artifacts" / "embeddings").exists()
