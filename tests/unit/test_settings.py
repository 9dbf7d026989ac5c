from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from backend.errors import ValidationFailed
from backend.osdeps.paths import default_data_dir
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_follow_os_conventions() -> None:
    assert default_data_dir({"HOME": "/home/u"}, "linux") == Path("/home/u/.local/share/docsidecar")
    assert default_data_dir({"HOME": "/home/u", "XDG_DATA_HOME": "/x"}, "linux") == Path("/x/docsidecar")
    assert default_data_dir({"HOME": "/Users/u"}, "darwin") == Path("/Users/u/Library/Application Support/docsidecar")
    assert (
        default_data_dir({"LOCALAPPDATA": r"C:\Users\u\AppData\Local", "HOME": "x"}, "win32")
        == Path(r"C:\Users\u\AppData\Local") / "docsidecar"
    )


def test_env_then_cli_precedence(tmp_path: Path) -> None:
    env = {
        "DOCSIDECAR_PORT": "1234",
        "DOCSIDECAR_DATA_DIR": str(tmp_path),
        "DOCSIDECAR_STDIN_WATCH": "yes",
    }
    s = Settings.load(env)
    assert (s.port, s.data_dir, s.stdin_watch) == (1234, tmp_path, True)
    s = Settings.load(env, {"port": 99, "stdin_watch": None})
    assert s.port == 99 and s.stdin_watch is True


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("DOCSIDECAR_PORT", "70000"),
        ("DOCSIDECAR_PORT", "x"),
        ("DOCSIDECAR_STDIN_WATCH", "maybe"),
        ("DOCSIDECAR_LOG_LEVEL", "LOUD"),
        ("DOCSIDECAR_MAX_BODY_BYTES", "0"),
    ],
)
def test_bad_env_values_are_named(var: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match=var):
        Settings.load({var: value, "DOCSIDECAR_DATA_DIR": str(tmp_path)})


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = Settings.load({}, {"data_dir": tmp_path})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


def test_token_never_shown_in_repr(tmp_path: Path) -> None:
    s = Settings.load({"DOCSIDECAR_TOKEN": "sekrit-value"}, {"data_dir": tmp_path})
    assert s.token == "sekrit-value"
    assert "sekrit-value" not in repr(s)


def readme_settings_rows() -> dict[str, tuple[str, str]]:
    """env var -> (CLI flag cell, default cell) from the README's "## Settings" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`DOCSIDECAR_"):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_every_setting_is_documented_and_in_readme() -> None:
    """Like datasette's test_docs: a Settings field missing from the README table (or a row
    left for a removed field, or a stale default/flag) fails here."""
    rows = readme_settings_rows()
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    documented = Settings.fields_doc()
    assert set(rows) == {env for _, env, _, _ in documented}, "README settings table != Settings fields"
    for name, env, default, doc in documented:
        assert len(doc) > 20, f"setting {name} needs a real doc string"
        flag, shown = rows[env]
        expected_flag = f"`--{name.replace('_', '-')}`" if fields[name].metadata["cli"] else "—"
        assert flag == expected_flag, (env, flag)
        if default != "unset":
            assert shown == f"`{default}`", (env, shown, default)


HTTP_ENV = {
    "DOCSIDECAR_EMBED_PROVIDER": "http",
    "DOCSIDECAR_EMBED_HTTP_BASE_URL": "http://127.0.0.1:11434/v1/",
    "DOCSIDECAR_EMBED_HTTP_MODEL": "nomic-embed-text",
    "DOCSIDECAR_EMBED_HTTP_MODEL_ID": "nomic-embed-text-v1.5",
    "DOCSIDECAR_EMBED_HTTP_DIM": "768",
    "DOCSIDECAR_EMBED_HTTP_API_KEY": "sk-never-shown",
}


def test_http_provider_settings(tmp_path: Path) -> None:
    s = Settings.load(HTTP_ENV, {"data_dir": tmp_path})
    assert (s.embed_provider, s.embed_http_model, s.embed_http_model_id, s.embed_http_dim) == (
        "http", "nomic-embed-text", "nomic-embed-text-v1.5", 768,
    )  # fmt: skip
    assert s.embed_http_base_url == "http://127.0.0.1:11434"  # the client appends /v1/embeddings
    assert s.embed_http_api_key == "sk-never-shown" and "sk-never-shown" not in repr(s)
    assert "embed_http_api_key" not in {f.name for f in Settings.cli_fields()}  # env only: not in `ps`
    assert Settings.load({}, {"data_dir": tmp_path}).embed_provider == "onnx"


@pytest.mark.parametrize("missing", ["BASE_URL", "MODEL", "MODEL_ID", "DIM"])
def test_http_provider_without_its_settings_is_a_clear_error(missing: str, tmp_path: Path) -> None:
    env = {k: v for k, v in HTTP_ENV.items() if k != f"DOCSIDECAR_EMBED_HTTP_{missing}"}
    with pytest.raises(
        ValidationFailed, match=f"DOCSIDECAR_EMBED_PROVIDER=http needs DOCSIDECAR_EMBED_HTTP_{missing}$"
    ):
        Settings.load(env, {"data_dir": tmp_path})


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("DOCSIDECAR_EMBED_PROVIDER", "openai", "expected onnx or http"),
        ("DOCSIDECAR_EMBED_HTTP_BASE_URL", "ftp://host", "http:// or https://"),
        ("DOCSIDECAR_EMBED_HTTP_BASE_URL", "https://user:sk-x@host", "must not contain credentials"),
        ("DOCSIDECAR_EMBED_HTTP_BASE_URL", "https://host/v1?key=sk-x", "query string"),
        ("DOCSIDECAR_EMBED_HTTP_DIM", "100", "divisible by 8"),
        ("DOCSIDECAR_EMBED_HTTP_DIM", "0", "positive"),
    ],
)
def test_bad_http_provider_values_are_named(var: str, value: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match=var) as err:
        Settings.load({**HTTP_ENV, var: value}, {"data_dir": tmp_path})
    assert says in err.value.message and "sk-x" not in err.value.message.replace(value, "")


def test_serve_refuses_to_start_with_an_incomplete_http_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.cli import main

    for name in list(os.environ):
        if name.startswith("DOCSIDECAR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCSIDECAR_EMBED_HTTP_MODEL", "nomic-embed-text")
    code = main(["serve", "--data-dir", str(tmp_path / "d"), "--embed-provider", "http", "--embed-http-dim", "768"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "docsidecar: DOCSIDECAR_EMBED_PROVIDER=http needs DOCSIDECAR_EMBED_HTTP_BASE_URL, DOCSIDECAR_EMBED_HTTP_MODEL_ID"
    )
    assert not (tmp_path / "d").exists()  # nothing was created
