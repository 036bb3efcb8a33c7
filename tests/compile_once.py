"""Test-only speed-ups: what every new app compiles again is compiled once
per test process.

The suite creates a Flask app for nearly every test (about 3,000 per pass).
Two costs came with each, measured with cProfile over ``tests/account`` on
PostgreSQL:

- **Werkzeug's URL builders.** Adding a route compiles two small Python
  functions to build its URLs (``Rule.compile`` -> ``Rule._compile_builder``:
  an ``ast`` tree and a ``compile()`` each), about 90 of the 125 ms
  ``create_app`` took for visma_idp's 131 routes, while a test builds only a
  handful of URLs. Here a builder is compiled the first time its rule builds a
  URL, from the same rule state, and kept on the rule as Werkzeug keeps it.
- **Jinja templates.** Each app's Jinja environment compiled every template
  it rendered: about a quarter of the run. Here all environments share one
  in-memory bytecode cache, keyed by the template's name, file, source and
  the environment's settings (extensions, autoescape, delimiters, ...), so a
  template is compiled once per process and per kind of environment.

The package is not changed: a production process compiles each of these
once anyway. Every ``url_for`` and every page of the suite goes through these
paths, so a wrong URL or page would fail the tests that use it. If
Werkzeug's internals change shape, the URL patch is not applied and the
suite is only slower.
"""

from __future__ import annotations

import threading

from flask import Flask
from jinja2.bccache import Bucket, BytecodeCache
from werkzeug.routing.rules import Rule

# -- Werkzeug: URL builders compiled on first use -----------------------------

_compile_builder = getattr(Rule, "_compile_builder", None)


def _lazy_compile_builder(self, append_unknown=True):
    attribute = "_build_unknown" if append_unknown else "_build"

    def build(rule, **values):
        real = _compile_builder(rule, append_unknown).__get__(rule, None)
        setattr(rule, attribute, real)
        return real(**values)

    return build


if _compile_builder is not None and hasattr(Rule, "compile"):
    Rule._compile_builder = _lazy_compile_builder


# -- Jinja: one bytecode cache for every environment ---------------------------

def _name(value) -> str:
    return getattr(value, "__qualname__", None) or repr(value)


class SharedBytecodeCache(BytecodeCache):
    """Compiled templates in memory, shared by every Jinja environment of the process."""

    def __init__(self) -> None:
        self._code: dict[str, object] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _settings(environment) -> str:
        """What changes the code Jinja generates for one template source."""
        return repr((
            sorted(environment.extensions), _name(environment.autoescape), _name(environment.finalize),
            _name(environment.undefined), environment.block_start_string, environment.block_end_string,
            environment.variable_start_string, environment.variable_end_string,
            environment.comment_start_string, environment.comment_end_string,
            environment.line_statement_prefix, environment.line_comment_prefix, environment.trim_blocks,
            environment.lstrip_blocks, environment.newline_sequence, environment.keep_trailing_newline,
            environment.optimized, environment.is_async,
        ))

    def get_bucket(self, environment, name, filename, source):
        key = f"{self.get_cache_key(name, filename)}:{self.get_cache_key(self._settings(environment))}"
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket) -> None:
        with self._lock:
            stored = self._code.get(bucket.key)
        if stored is not None and stored[0] == bucket.checksum:
            bucket.code = stored[1]

    def dump_bytecode(self, bucket) -> None:
        with self._lock:
            self._code[bucket.key] = (bucket.checksum, bucket.code)


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": SharedBytecodeCache()}
