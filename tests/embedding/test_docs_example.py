"""docs/embedding.md, run as written: its ``portal`` package, its template,
its ``flask --app portal idp-upgrade`` command and its ``setup_idp.py``
script, then a sign-in of the client and user that script made."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.embedding.conftest import Host, close_database, flow_for
from tests.helpers import path_of

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "embedding.md"
BLOCK_RE = re.compile(r"```(?:python|html)\n(.*?)```", re.S)
NAME_RE = re.compile(r"^(?:# |<!-- )(\S+?)(?: -->)?$")


def files_of_the_doc() -> dict[str, str]:
    """The code blocks that open with their file name (``# portal/__init__.py``)."""
    files = {}
    for block in BLOCK_RE.findall(DOC.read_text()):
        match = NAME_RE.match(block.splitlines()[0])
        if match:
            files[match.group(1)] = block
    return files


def test_the_embedding_guide_works_as_written(fresh_database, tmp_path, monkeypatch):
    files = files_of_the_doc()
    assert set(files) == {"portal/__init__.py", "portal/templates/index.html", "setup_idp.py"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    doc = DOC.read_text()
    assert "flask --app portal idp-upgrade" in doc and "visma-idp db upgrade" in doc

    env = {
        "PORTAL_IDP_SECRET_KEY": fresh_database["SECRET_KEY"],
        "PORTAL_IDP_DATABASE_URL": fresh_database["DATABASE_URL"],
        "VISMA_IDP_ARGON2_TIME_COST": "1", "VISMA_IDP_ARGON2_MEMORY_KIB": "1024",
    }
    run_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def run(*args):
        done = subprocess.run(args, capture_output=True, text=True, env=run_env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    flask = Path(sys.executable).with_name("flask")
    assert "provider database ready (4 new signing keys)" in run(str(flask), "--app", "portal", "idp-upgrade")
    out = run(sys.executable, "setup_idp.py")
    secret = re.search(r"client secret \(shown once\): (\S+)", out).group(1)
    assert "['kari@example.no', 'ola@example.no']" in out

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("portal", None)
    try:
        portal = importlib.import_module("portal")
        app = portal.app
        client = app.test_client()
        front = client.get("/").get_data(as_text=True)
        assert 'href="https://portal.example.com/idp/login"' in front
        meta = client.get("/idp/.well-known/openid-configuration").get_json()
        assert meta["issuer"] == "https://portal.example.com/idp"
        flow = flow_for(Host(app, "/idp"), secret=secret, redirect_uri="https://expense.example.com/callback")
        flow.client = client
        tokens = flow.tokens(scope="openid email")
        info = client.get(path_of(meta["userinfo_endpoint"]), headers={"Authorization": "Bearer " + tokens["access_token"]})
        assert info.get_json()["email"] == "kari@example.no"
    finally:
        imported = sys.modules.pop("portal", None)
        if imported is not None:
            close_database(imported.app)
