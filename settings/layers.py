"""Covey's one way to read settings: layer the sources once, convert with cattrs.

Every group of settings (the prices, the specialists table, the engine, the language
server's, the baseline) is a frozen dataclass. :func:`layer` stacks its sources, later
wins, key by key: the shipped TOML, the user's file in ``$COVEY_HOME``, the environment,
then the editor's ``initializationOptions``. :func:`structure` converts the result with
cattrs. A bad value becomes one message naming the source and the setting; the caller
chooses whether that raises (a shipped or user table file that cannot be used) or falls
back to the field's default (editor settings, which must never stop the server).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

EDITOR = "initializationOptions"
_MAX_ROUNDS = 50


@dataclass
class Layered:
    """Settings merged from their sources, and which source set each key."""

    raw: dict = field(default_factory=dict)
    origins: dict[tuple, str] = field(default_factory=dict)
    """Key path → the source that set it last (a file, ``$VAR`` or the editor)."""
    sources: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)
    """Sources that could not be read (only when no ``error`` was given)."""

    def origin(self, path: tuple) -> str:
        """The source of ``path``, or of the nearest table above it that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return " + ".join(self.sources) or "settings"


def snake(name: str) -> str:
    """``apiKeyEnv`` → ``api_key_env``: editors send camelCase, the TOML files snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(raw):
    """Editor settings: snake_case keys, and ``null`` means "not set"."""
    if isinstance(raw, dict):
        return {snake(str(k)): _snake_keys(v) for k, v in raw.items() if v is not None}
    return raw


def layer(*, shipped: tuple[str, str] | None = None, user_file: Path | None = None,
          section: str | None = None, env: Mapping[str, str] | None = None,
          editor=None, editor_name: str = EDITOR, error: type[Exception] | None = None,
          camel_case_files: bool = False) -> Layered:
    """Stack the sources, later wins: ``shipped`` (text, name), ``user_file`` (if it
    exists), ``env`` (variable name → dotted key, applied when the variable is set and
    not empty) and ``editor`` (``initializationOptions``, or command-line options named by
    ``editor_name``; camelCase keys are accepted and ``None`` means not set).

    ``section`` picks one table of each file (``server`` of ``config.toml``);
    ``camel_case_files`` accepts camelCase keys there too. A file that is not valid TOML
    raises ``error`` when given, else it is reported and skipped.
    """
    out = Layered()
    files = []
    if shipped is not None:
        files.append(shipped)
    if user_file is not None and user_file.exists():
        try:
            files.append((user_file.read_text(), str(user_file)))
        except (OSError, UnicodeDecodeError) as exc:
            _fail(out, f"{user_file}: cannot be read ({exc})", error)
    for text, name in files:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            _fail(out, f"{name}: cannot be read: not valid TOML ({exc})", error)
            continue
        if section is not None:
            data = data.get(section, {})
            if not isinstance(data, dict):
                _fail(out, f"{name}: [{section}] must be a table", error)
                continue
        _add(out, _snake_keys(data) if camel_case_files else data, name)
    for var, dotted in (env or {}).items():
        value = os.environ.get(var, "")
        if value:
            nested: dict = {}
            node = nested
            *parents, last = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
            _add(out, nested, f"${var}")
    if editor is not None:
        if isinstance(editor, dict):
            _add(out, _snake_keys(editor), editor_name)
        else:
            _fail(out, f"{editor_name}: expected an object, got {type(editor).__name__}",
                  error)
    return out


def _fail(out: Layered, message: str, error: type[Exception] | None) -> None:
    if error is not None:
        raise error(message)
    out.problems.append(f"{message}; using defaults")


def _add(out: Layered, data: dict, source: str) -> None:
    out.sources = (*out.sources, source)
    _merge(out.raw, data, (), source, out.origins)


def _merge(base: dict, override: dict, path: tuple, source: str, origins: dict) -> None:
    """Overlay ``override`` onto ``base`` in place, recursing into tables."""
    for key, value in override.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, here, source, origins)
        else:
            base[key] = copy.deepcopy(value)
            origins[here] = source


# ------------------------------------------------------------------ conversion (cattrs)

def _strict(kind: type):
    """cattrs turns ``"5"`` into 5 and ``"yes"`` into True; settings must not guess."""
    def hook(value, _type):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}")
        if kind is int and value < 0:
            raise ValueError("must not be negative")
        return value
    return hook


def _strings(value, _type) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def _is_table(type_) -> bool:
    return type_ is dict or typing.get_origin(type_) is dict


def _table_hook(type_):
    """Tables: say "expected a table" for anything else, then let cattrs convert the
    values (its errors carry each key)."""
    inner = converter.gen_structure_mapping(type_) if typing.get_args(type_) else dict

    def hook(value, _type):
        if not isinstance(value, dict):
            raise TypeError("expected a table")
        return inner(value) if inner is dict else inner(value, _type)
    return hook


def _dataclass_hook(cls):
    inner = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)

    def hook(value, _type):
        if not isinstance(value, dict):
            raise TypeError("expected a table")
        return inner(value, _type)
    return hook


converter = cattrs.Converter(forbid_extra_keys=True)
for _kind in (int, float, str, bool):
    converter.register_structure_hook(_kind, _strict(_kind))
converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _strings)
converter.register_structure_hook_factory(_is_table, _table_hook)
converter.register_structure_hook_factory(dataclasses.is_dataclass, _dataclass_hook)


def structure(cls, layered: Layered | dict, *, error: type[Exception] | None = None,
              problems: list[str] | None = None, prefix: tuple = ()):
    """``cls`` from the layered settings. Each bad or unknown setting gives one message,
    ``SOURCE: dotted.key: what is wrong``; with ``error`` the first raises it, otherwise it
    goes to ``problems`` and the setting falls back to the field's default."""
    if not isinstance(layered, Layered):
        layered = Layered(raw=layered)
    raw = copy.deepcopy(layered.raw)
    for _ in range(_MAX_ROUNDS):
        try:
            return converter.structure(raw, cls)
        except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
            faults = _faults(exc, ())
        for path, what in faults:
            where = ".".join(map(str, (*prefix, *path)))
            message = f"{layered.origin(path)}: {where}: {what}"
            value = _get(raw, path)
            if value is not dataclasses.MISSING and what != "unknown key":
                message += f", got {value!r}"
            if error is not None:
                raise error(message) from None
            default = _default(cls, path)
            if default is not dataclasses.MISSING:
                message += f"; using the default {default!r}"
            if problems is not None:
                problems.append(message)
            if not path:
                raw = {}
            _drop(raw, path)
    raise RuntimeError(f"settings for {cls.__name__} could not be converted")


def _faults(exc: BaseException, path: tuple) -> list[tuple[tuple, str]]:
    """(key path, what is wrong) for every leaf error cattrs collected."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [((*path, key), "unknown key") for key in sorted(exc.extra_fields)]
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        out = []
        for sub, note in with_notes:
            key = note.name if hasattr(note, "name") else note.index
            out += _faults(sub, (*path, key))
        for sub in without:
            out += _faults(sub, path)
        return out
    if isinstance(exc, KeyError):
        return [(path, "is required")]
    return [(path, str(exc) or type(exc).__name__)]


def _default(cls, path: tuple):
    """The dataclass default behind ``path``, or MISSING when there is none."""
    for i, key in enumerate(path):
        fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(
            cls) else {}
        f = fields.get(key)
        if f is None:
            return dataclasses.MISSING
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            return dataclasses.MISSING
        if i == len(path) - 1:
            return value
        cls = type(value)
    return dataclasses.MISSING


def _get(raw: dict, path: tuple):
    node = raw
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return dataclasses.MISSING
        node = node[key]
    return node


def _drop(raw: dict, path: tuple) -> None:
    """Remove the setting at ``path`` (or the value that is not a table on the way to it)
    so its default applies."""
    node = raw
    for i, key in enumerate(path):
        if i == len(path) - 1 or not isinstance(node.get(key), dict):
            node.pop(key, None)
            return
        node = node[key]
