"""A host app with database tables of its own. Flask-SQLAlchemy allows one
``SQLAlchemy`` instance per app and the provider has one, so the host puts
its models on ours (``visma_idp.storage.db``) with a bind of its own
(``SQLALCHEMY_BINDS``, ``__bind_key__``): its tables go to its database, out
of our metadata and our migrations (docs/embedding.md).

Run in a fresh interpreter, because a model class stays registered on the
shared ``db`` for the life of the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = '''
import json, sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from visma_idp import IdentityProvider, api
from visma_idp.storage import Base, db


class Note(db.Model):
    __bind_key__ = "host"
    __tablename__ = "host_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


settings, host_db = json.loads(sys.argv[1]), sys.argv[2]
app = Flask("hostapp_with_tables")
app.config.update({"VISMA_IDP_" + k: v for k, v in settings.items()})
app.config["SQLALCHEMY_BINDS"] = {"host": host_db}
IdentityProvider(app)


@app.post("/notes")
def add_note():
    db.session.add(Note(text="hello"))
    db.session.commit()
    return "", 204


@app.get("/notes")
def notes():
    return {"notes": [n.text for n in db.session.scalars(db.select(Note))]}


api.upgrade_database(app)
with app.app_context():
    db.create_all(bind_key="host")
idp = app.extensions["visma_idp"]
idp.csrf.exempt(add_note)  # the host's JSON-less API post, out of the provider's CSRF check
client = app.test_client()
result = {
    "post": client.post("/notes").status_code,
    "notes": client.get("/notes").get_json()["notes"],
    "login": client.get("/login").status_code,
    "in_our_metadata": "host_notes" in Base.metadata.tables,
}
try:
    SQLAlchemy(app)
except RuntimeError as exc:
    result["second_instance"] = str(exc)
with app.app_context():
    for engine in db.engines.values():
        engine.dispose()
print(json.dumps(result))
'''


def test_host_tables_on_a_bind_of_their_own(fresh_database, tmp_path):
    script = tmp_path / "host_with_tables.py"
    script.write_text(textwrap.dedent(SCRIPT))
    host_db = f"sqlite:///{tmp_path / 'host.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-W", "error::ResourceWarning", str(script), json.dumps(fresh_database),
                           host_db], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["post"] == 204 and result["notes"] == ["hello"]
    assert result["login"] == 200
    assert result["in_our_metadata"] is False  # our migrations never see the host's tables
    assert "already been registered" in result["second_instance"]
