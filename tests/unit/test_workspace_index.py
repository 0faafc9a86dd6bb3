"""The workspace index (module outlines, import resolution, a bounded scan that skips what
a developer never imports) and the repository context built from it (definitions used near
the cursor within a token budget, similar chunks of recently edited files)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from covey_server import workspace as server_ws
from covey_specialists import workspace as ws
from covey_specialists.document import Document
from covey_specialists.repo_context import (
    EVICT_SIMILARITY,
    OUTLINE_LINES,
    RecentChunks,
    Workspace,
    build,
    definitions_in_use,
    estimate_tokens,
    near_cursor,
    render,
)
from covey_specialists.workspace import Import, WorkspaceIndex, outline, walk

MODELS = '''"""The app's models."""
from dataclasses import dataclass

DEFAULT_ROLE = "member"


@dataclass
class User:
    """A user of the app.

    Longer text that is not the first line."""

    name: str

    def full_name(self,
                  sep: str = " ") -> str:
        """The name, joined by ``sep``."""
        return self.name

    async def save(self): ...

    @property
    def initials(self) -> str:
        return self.name[:1]


def make_user(name: str,
              admin: bool = False,
              ) -> User:
    """Make a user.

    More about it."""
    return User(name)


def unused_helper(x):
    return x
'''


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def indexed(root: Path, **kwargs) -> WorkspaceIndex:
    index = WorkspaceIndex(**kwargs)
    list(index.scan(root))
    return index


# ----------------------------------------------------------------------------- outlines

def test_python_outline_has_functions_classes_methods_signatures_and_first_doc_lines():
    found = outline("pkg/models.py", MODELS, "python")
    assert found.module == "pkg.models"
    by_name = {d.name: d for d in found.definitions}
    assert list(by_name) == ["DEFAULT_ROLE", "User", "User.full_name", "User.save",
                             "User.initials", "make_user", "unused_helper"]
    assert by_name["User"].kind == "class"
    assert by_name["User"].signature == "class User:"
    assert by_name["User"].doc == "A user of the app."
    assert by_name["User.full_name"].kind == "method"
    # a signature wrapped over lines is one line
    assert by_name["User.full_name"].signature == 'def full_name(self, sep: str = " ") -> str:'
    assert by_name["User.full_name"].doc == "The name, joined by ``sep``."
    assert by_name["User.save"].signature == "async def save(self):"
    assert by_name["make_user"].signature == \
        "def make_user(name: str, admin: bool = False, ) -> User:"
    assert by_name["make_user"].doc == "Make a user."
    assert by_name["unused_helper"].doc == ""
    assert by_name["DEFAULT_ROLE"].kind == "variable"
    assert [m.name for m in found.members("User")] == ["User.full_name", "User.save",
                                                       "User.initials"]
    assert found.imports == (Import("dataclass", "dataclasses", "dataclass"),)


def test_python_imports_bind_the_names_a_module_uses():
    source = ("import os\nimport a.b as ab\nimport x.y\nfrom . import sibling\n"
              "from ..core.models import User as U, Team\nfrom .models import make_user\n")
    assert outline("pkg/sub/mod.py", source, "python").imports == (
        Import("os", "os"), Import("ab", "a.b"), Import("x", "x"),
        Import("sibling", ".", "sibling"), Import("U", "..core.models", "User"),
        Import("Team", "..core.models", "Team"), Import("make_user", ".models", "make_user"))


def test_a_package_init_is_the_package_module():
    assert outline("pkg/sub/__init__.py", "", "python").module == "pkg.sub"
    assert outline("web/lib/index.js", "", "javascript").module == "web.lib"


def test_javascript_outline_has_classes_functions_and_imports():
    source = '''import React, {useState as useS, useEffect} from "react";
import * as path from "path";
import Shape from './shape';

/**
 * Adds two numbers.
 * More.
 */
export function add(a,
                    b) { return a + b; }

export default class Circle extends Shape {
  constructor(r) { super(); this.r = r; }
  /** The area. */
  area() { return 3.14 * this.r * this.r; }
  static unit() { return new Circle(1); }
}

function* ids() { yield 1; }
const double = (x) => x * 2;
'''
    found = outline("web/geometry.js", source, "javascript")
    by_name = {d.name: d for d in found.definitions}
    assert list(by_name) == ["add", "Circle", "Circle.constructor", "Circle.area",
                             "Circle.unit", "ids", "double"]
    assert by_name["add"].signature == "function add(a, b)"
    assert by_name["add"].doc == "Adds two numbers."  # exported: its JSDoc is before `export`
    assert by_name["Circle"].signature == "class Circle extends Shape"
    assert by_name["Circle.area"].signature == "area()"
    assert by_name["Circle.area"].doc == "The area."
    assert by_name["Circle.unit"].kind == "method"
    assert by_name["double"].kind == "variable"
    assert found.imports == (
        Import("React", "react", "default"), Import("useS", "react", "useState"),
        Import("useEffect", "react", "useEffect"), Import("path", "path"),
        Import("Shape", "./shape", "default"))


def test_typescript_outline_has_classes_abstract_methods_functions_and_imports():
    source = '''import { User } from "./models";
import type { Opts } from '../opts';

export abstract class Repo<T> implements Store {
  abstract find(id: string): T | undefined;
  save(item: T): void {}
}

/** Loads one user. */
export async function load(id: string,
                           opts?: Opts): Promise<User> { return fetchUser(id); }
'''
    found = outline("web/repo.ts", source, "typescript")
    by_name = {d.name: d for d in found.definitions}
    assert list(by_name) == ["Repo", "Repo.find", "Repo.save", "load"]
    assert by_name["Repo"].signature == "abstract class Repo<T> implements Store"
    assert by_name["Repo.find"].signature.startswith("abstract find(id: string): T")
    assert by_name["load"].signature == \
        "async function load(id: string, opts?: Opts): Promise<User>"
    assert by_name["load"].doc == "Loads one user."
    assert found.imports == (Import("User", "./models", "User"),
                             Import("Opts", "../opts", "Opts"))
    tsx = outline("web/view.tsx", "export function View(p: Props) { return <div/>; }\n",
                  "typescript")
    assert [d.name for d in tsx.definitions] == ["View"]


def test_a_file_that_does_not_parse_still_gives_what_it_can():
    found = outline("bad.py", "def good(a):\n    return a\n\ndef broken(:\n", "python")
    assert found.find("good") is not None


# ----------------------------------------------------------------------------- resolution

@pytest.fixture
def project(tmp_path) -> Path:
    return write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/models.py": MODELS,
        "pkg/util.py": 'def slugify(text: str) -> str:\n    """Lower case, dashes."""\n',
        "pkg/sub/__init__.py": "",
        "pkg/sub/forms.py": "def render_form(user) -> str:\n    return ''\n",
        "pkg/sub/views.py": "from ..models import User\nfrom . import forms\n"
                            "from pkg.util import slugify\nimport os\n",
        "web/shape.ts": "export class Shape { area(): number { return 0; } }\n",
        "web/lib/index.js": "export function helper() {}\n",
        "web/app.ts": "import { Shape } from './shape';\nimport { helper } from '../web/lib';\n",
    })


def test_relative_imports_resolve_to_workspace_modules(project):
    index = indexed(project)
    views = index.get("pkg/sub/views.py")
    by_bound = {imp.bound: imp for imp in views.imports}
    assert index.resolve(views, by_bound["User"]).path == "pkg/models.py"  # ..models
    assert index.resolve(views, by_bound["forms"]).path == "pkg/sub/forms.py"  # from . import
    app = index.get("web/app.ts")
    js = {imp.bound: imp for imp in app.imports}
    assert index.resolve(app, js["Shape"]).path == "web/shape.ts"  # ./shape → shape.ts
    assert index.resolve(app, js["helper"]).path == "web/lib/index.js"  # a folder's index


def test_absolute_imports_resolve_and_outside_ones_do_not(project):
    index = indexed(project)
    views = index.get("pkg/sub/views.py")
    by_bound = {imp.bound: imp for imp in views.imports}
    assert index.resolve(views, by_bound["slugify"]).path == "pkg/util.py"
    assert index.resolve(views, by_bound["os"]) is None
    assert index.resolve(views, Import("json", "json")) is None


def test_the_package_itself_or_a_src_folder_may_be_the_root(tmp_path):
    write(tmp_path / "src", {"pkg/models.py": MODELS, "pkg/__init__.py": ""})
    index = indexed(tmp_path)
    assert index.module("pkg.models").path == "src/pkg/models.py"
    inside = indexed(tmp_path / "src" / "pkg")  # the package folder opened on its own
    assert inside.resolve("app.py", Import("make_user", "pkg.models", "make_user")).path \
        == "models.py"
    assert inside.resolve("app.py", Import("make_user", ".models", "make_user")).path \
        == "models.py"


def test_keys_are_relative_to_the_root_that_holds_the_file(project, tmp_path_factory):
    index = indexed(project)
    assert index.key(project / "pkg" / "models.py") == "pkg/models.py"
    assert index.key(tmp_path_factory.mktemp("elsewhere") / "a.py") is None


def test_remove_and_remove_under_forget_modules(project):
    index = indexed(project)
    index.remove("pkg/util.py")
    assert index.get("pkg/util.py") is None and index.module("pkg.util") is None
    assert index.remove_under("pkg/sub") == 3
    assert index.module("pkg.sub.forms") is None
    assert index.get("pkg/models.py") is not None


# ----------------------------------------------------------------------------- the scan

def test_scan_skips_gitignored_venvs_vendored_hidden_and_build_folders(tmp_path):
    write(tmp_path, {
        ".gitignore": "# comment\ngenerated/\n*_pb2.py\ndocs/*.py\n",
        "keep.py": "def keep(): pass\n",
        "generated/api.py": "def gen(): pass\n",
        "proto/thing_pb2.py": "X = 1\n",
        "docs/conf.py": "X = 1\n",
        "app/.gitignore": "local.py\n",
        "app/local.py": "X = 1\n",
        "app/main.py": "X = 1\n",
        "local.py": "X = 1\n",  # app/.gitignore applies under app/ only
        ".venv/lib/site.py": "X = 1\n",
        "venv/lib/x.py": "X = 1\n",
        "node_modules/react/index.js": "module.exports = 1;\n",
        "lib/site-packages/y.py": "X = 1\n",
        "vendor/z.py": "X = 1\n",
        ".hidden/h.py": "X = 1\n",
        "covey.egg-info/e.py": "X = 1\n",
        "notes.txt": "not code\n",
        "web/app.ts": "export const a = 1;\n",
    })
    keys = sorted(indexed(tmp_path)._by_path)
    assert keys == ["app/main.py", "keep.py", "local.py", "web/app.ts"]


def test_symlink_loops_and_symlinked_folders_are_not_followed(tmp_path):
    write(tmp_path, {"pkg/a.py": "X = 1\n"})
    os.symlink(tmp_path, tmp_path / "pkg" / "loop")  # a loop back to the root
    os.symlink(tmp_path / "pkg", tmp_path / "alias")
    os.symlink(tmp_path / "pkg" / "a.py", tmp_path / "link.py")
    assert [p.relative_to(tmp_path).as_posix() for p in walk(tmp_path)] == ["pkg/a.py"]
    assert sorted(indexed(tmp_path)._by_path) == ["pkg/a.py"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_only_regular_files_are_read(tmp_path):
    """A named pipe called ``x.py`` would block the scan's read forever."""
    write(tmp_path, {"ok.py": "X = 1\n"})
    os.mkfifo(tmp_path / "pipe.py")
    assert [p.name for p in walk(tmp_path)] == ["ok.py"]


def test_binary_and_too_large_files_are_not_indexed(tmp_path):
    write(tmp_path, {
        "ok.py": "def ok(): pass\n",
        "blob.py": b"\x00\x01\x02binary" * 100,
        "big.py": "X = 1\n" * (ws.MAX_FILE_BYTES // 6 + 10),
        "latin.py": "name = 'caf\xe9'\n".encode("latin-1"),  # not UTF-8, still text
    })
    index = indexed(tmp_path)
    assert sorted(index._by_path) == ["latin.py", "ok.py"]
    assert index.add_text("huge.py", "X = 1\n" * (ws.MAX_FILE_BYTES // 6 + 10)) is None


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_skipped(tmp_path):
    write(tmp_path, {"ok.py": "X = 1\n", "secret.py": "X = 2\n"})
    (tmp_path / "secret.py").chmod(0)
    try:
        assert sorted(indexed(tmp_path)._by_path) == ["ok.py"]
    finally:
        (tmp_path / "secret.py").chmod(0o644)


def test_a_file_whose_read_fails_is_skipped(tmp_path, monkeypatch):
    """The same as a chmod 000 file, also where the tests run as root."""
    write(tmp_path, {"ok.py": "X = 1\n", "secret.py": "X = 2\n"})
    read = Path.read_bytes

    def refuse(self):
        if self.name == "secret.py":
            raise PermissionError(13, "Permission denied", str(self))
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert sorted(indexed(tmp_path)._by_path) == ["ok.py"]


def test_a_folder_that_cannot_be_listed_is_skipped(tmp_path, monkeypatch):
    """A folder deleted (or made unreadable) between being seen and being listed."""
    write(tmp_path, {"a/one.py": "X = 1\n", "b/two.py": "X = 2\n", "c/three.py": "X = 3\n"})
    scandir = os.scandir

    def flaky(path):
        if Path(path).name == "b":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return scandir(path)

    monkeypatch.setattr(ws.os, "scandir", flaky)
    assert sorted(indexed(tmp_path)._by_path) == ["a/one.py", "c/three.py"]


def test_folders_and_files_deleted_while_scanning(tmp_path):
    write(tmp_path, {"a/one.py": "X = 1\n", "a/two.py": "X = 2\n", "m/gone.py": "X = 3\n",
                     "z/first.py": "X = 4\n"})
    index = WorkspaceIndex()
    seen = []
    for key in index.scan(tmp_path):  # folders are walked last-listed first: z, m, a
        seen.append(key)
        if key == "z/first.py":
            shutil.rmtree(tmp_path / "m")  # listed already, not yet walked
        if key == "a/one.py":
            (tmp_path / "a" / "two.py").unlink()  # listed already, not yet read
    assert seen == ["z/first.py", "a/one.py"]
    assert sorted(index._by_path) == ["a/one.py", "z/first.py"]


def test_a_file_changing_during_the_scan_is_indexed_as_read(tmp_path):
    write(tmp_path, {"a.py": "def first(): pass\n", "b.py": "def old(x): pass\n"})
    index = WorkspaceIndex()
    for key in index.scan(tmp_path):
        if key == "a.py":  # b.py is listed but not read yet
            (tmp_path / "b.py").write_text("def new(x, y): pass\n")
    assert index.get("b.py").find("new").signature == "def new(x, y):"
    assert index.get("b.py").find("old") is None
    (tmp_path / "a.py").write_text("def changed(): pass\n")  # after being read
    assert index.get("a.py").find("first") is not None  # until it is indexed again
    index.add_file(tmp_path / "a.py")
    assert index.get("a.py").find("changed") is not None


def test_the_index_holds_at_most_max_files(tmp_path):
    write(tmp_path, {f"m{i}.py": f"def f{i}(): pass\n" for i in range(6)})
    index = indexed(tmp_path, max_files=4)
    assert len(index) == 4
    kept = next(iter(index._by_path))
    assert index.add_text("new.py", "X = 1\n") is None  # full: nothing new
    assert index.add_text(kept, "def again(): pass\n") is not None  # re-indexing is fine
    assert index.get(kept).find("again") is not None
    assert len(index) == 4


def test_a_scan_stops_when_asked(tmp_path):
    write(tmp_path, {f"d{i}/m.py": "X = 1\n" for i in range(5)})
    index = WorkspaceIndex()
    stop = []
    for _ in index.scan(tmp_path, should_stop=lambda: bool(stop)):
        stop.append(True)
    assert len(index) == 1


# ----------------------------------------------------------------------------- the builder

APP = '''from .models import User, make_user, unused_helper
from . import util
import os


def greet(name):
    """Far from the cursor, and unrelated."""
    return os.path.join(name)


def signup(name):
    slug = util.slugify(name)
    user = User(slug)
    return make_user(<CURSOR>
'''


@pytest.fixture
def app_index(project) -> WorkspaceIndex:
    return indexed(project)


def app_doc(text: str = APP) -> tuple[Document, int]:
    offset = text.index("<CURSOR>")
    return Document("file:///w/pkg/app.py", text.replace("<CURSOR>", ""), "python"), offset


def test_build_picks_the_workspace_definitions_used_near_the_cursor_nearest_first(app_index):
    doc, offset = app_doc()
    start, end = near_cursor(doc, offset)
    snippets = build(doc, start, end, Workspace(app_index, None, "pkg/app.py"))
    assert [(s.path, s.lines[0]) for s in snippets] == [
        ("pkg/models.py", "def make_user(name: str, admin: bool = False, ) -> User:"),
        ("pkg/models.py", "class User:"),
        ("pkg/util.py", "def slugify(text: str) -> str:"),  # `util.slugify`: a module's
        ("pkg/models.py", "def unused_helper(x):"),  # imported, used nowhere yet: last
    ]
    assert snippets[0].lines[1] == '    """Make a user."""'
    assert snippets[1].lines[1:] == ('    """A user of the app."""',
                                     '    def full_name(self, sep: str = " ") -> str:',
                                     "    async def save(self):",
                                     "    def initials(self) -> str:")
    text = render(snippets, "", "python")
    assert text.startswith("# pkg/models.py\n# def make_user(")


def test_build_counts_only_names_near_the_cursor(app_index):
    far = APP.replace("    slug = util.slugify(name)\n", "") \
        .replace("import os\n", "import os\nX = util.slugify('a')\n" + "\n" * 40)
    doc, offset = app_doc(far)
    start, end = near_cursor(doc, offset)
    found = [s.lines[0] for s in build(doc, start, end,
                                       Workspace(app_index, None, "pkg/app.py"))]
    # slugify is used, but far from the cursor: left out; unused_helper is used nowhere
    assert "def slugify(text: str) -> str:" not in found
    assert found[-1] == "def unused_helper(x):"


def test_from_package_import_module_gives_the_modules_definitions(app_index):
    doc = Document("file:///w/pkg/sub/views.py",
                   "from pkg import util\nfrom . import forms\n\n"
                   "x = forms.render_form(util.slugify(name))\n", "python")
    found = definitions_in_use(doc, 0, len(doc.text), app_index, "pkg/sub/views.py")
    assert [s.lines[0] for s in found] == ["def slugify(text: str) -> str:",
                                           "def render_form(user) -> str:"]


def test_a_name_a_package_re_exports_is_described_where_it_is_defined(tmp_path):
    """``from pkg import load`` where pkg's ``__init__`` only imports ``load`` from its
    ``api`` module (by name, or with ``*``): the definition comes from where it is."""
    root = write(tmp_path, {
        "pkg/__init__.py": "from .api import load as load\nfrom .items import *\n",
        "pkg/api.py": 'def load(fp) -> dict:\n    """Load a document."""\n',
        "pkg/items.py": "def ws(text: str) -> str:\n    return text\n",
    })
    index = indexed(root)
    doc = Document("file:///w/tests/test_api.py",
                   "from pkg import load, ws\n\ndoc = \n", "python")
    found = definitions_in_use(doc, 0, len(doc.text), index, "tests/test_api.py")
    assert [(s.path, s.lines[0]) for s in found] == [
        ("pkg/api.py", "def load(fp) -> dict:"), ("pkg/items.py", "def ws(text: str) -> str:")]
    assert index.definition(index.get("pkg/__init__.py"), "missing") is None


def test_a_module_used_as_module_dot_name_is_outlined_words_near_the_cursor_first(tmp_path):
    """``_sigs.`` may be followed by a name the file never used: its module's other names
    are listed, those sharing words with the code near the cursor first, public before
    private, and not the ones already described."""
    names = [f"def helper_{i}(x):\n    return x\n" for i in range(20)]
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/sigs.py": "".join(names) + (
        "def _has_varargs(func):\n    return False\n"
        "def is_arity(n, func):\n    return True\n")})
    index = indexed(root)
    text = ("from pkg import sigs as _sigs\n\n"
            "def has_varargs(func):\n    if _sigs.is_arity(1, func):\n        return ")
    doc = Document("file:///w/pkg/functoolz.py", text, "python")
    found = definitions_in_use(doc, 0, len(doc.text), index, "pkg/functoolz.py")
    assert [s.kind for s in found] == ["definition", "outline"]
    assert found[0].lines[0] == "def is_arity(n, func):"
    outline_lines = found[1].lines
    assert outline_lines[0] == "def _has_varargs(func):"  # shares has, varargs
    assert "def is_arity(n, func):" not in outline_lines  # described above
    assert outline_lines[1:] == tuple(f"def helper_{i}(x):" for i in range(11))
    assert len(outline_lines) == OUTLINE_LINES


def test_an_imported_name_used_only_inside_other_words_counts_as_not_used_yet(tmp_path):
    """``S`` and ``load`` are imported and used nowhere, though ``Spec``, ``MySchema`` and
    ``loads`` contain them: they are described, as names the cursor may use first."""
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": (
        "S = object()\ndef load(fp):\n    pass\ndef loads(s):\n    pass\n"
        "class Spec:\n    pass\n")})
    index = indexed(root)
    text = ("from pkg.core import S, Spec, load, loads\n\n"
            "class MySchema(Spec):\n    data = loads('x')\n" + "\n" * 40 + "x = ")
    doc = Document("file:///w/tests/test_core.py", text, "python")
    start, end = near_cursor(doc, len(text))
    found = [s.lines[0] for s in definitions_in_use(doc, start, end, index,
                                                    "tests/test_core.py")]
    assert found == ["S = object()", "def load(fp):"]


def test_a_method_used_through_its_class_is_described_with_its_docstring(app_index):
    doc = Document("file:///w/pkg/app.py",
                   "from pkg.models import User\n\nname = User.full_name(u)\n", "python")
    found = definitions_in_use(doc, 0, len(doc.text), app_index, "pkg/app.py")
    assert [s.lines for s in found if s.lines[0] != "class User:"] == [(
        '    def full_name(self, sep: str = " ") -> str:',
        '        """The name, joined by ``sep``."""')]


def test_javascript_definitions_in_use(app_index):
    doc = Document("file:///w/web/main.ts",
                   "import { Shape } from './shape';\nconst s = new Shape();\n", "typescript")
    found = build(doc, 0, len(doc.text), Workspace(app_index, None, "web/main.ts"))
    assert render(found, "", "typescript") == \
        "// web/shape.ts\n// class Shape\n//     area(): number\n"


def test_the_context_is_cut_to_its_budget_in_tokens(app_index):
    doc, offset = app_doc()
    start, end = near_cursor(doc, offset)
    full = build(doc, start, end, Workspace(app_index, None, "pkg/app.py"))
    first_cost = estimate_tokens(render(full[:1], "", "python"))
    for budget in (10_000, first_cost + 20, first_cost, first_cost - 1, 0):
        chosen = build(doc, start, end, Workspace(app_index, None, "pkg/app.py", budget))
        assert estimate_tokens(render(chosen, "", "python")) <= budget
    tight = build(doc, start, end, Workspace(app_index, None, "pkg/app.py", first_cost))
    assert tight == full[:1]  # the nearest stays; the later snippets are dropped
    assert build(doc, start, end, Workspace(app_index, None, "pkg/app.py", first_cost - 1)) \
        != full[:1]


def test_the_budget_counts_in_the_given_tokenizer(app_index):
    doc, offset = app_doc()
    start, end = near_cursor(doc, offset)

    def words(text: str) -> int:
        return len(text.split())

    for budget in (5, 12, 30, 200):
        chosen = build(doc, start, end, Workspace(app_index, None, "pkg/app.py", budget,
                                                  words))
        assert words(render(chosen, "", "python")) <= budget
    assert build(doc, start, end, Workspace(app_index, None, "pkg/app.py", 3, words)) == []


def test_no_workspace_or_no_budget_means_no_context(app_index):
    doc, offset = app_doc()
    assert build(doc, 0, offset, None) == []
    assert build(doc, 0, offset, Workspace(app_index, None, "pkg/app.py", 0)) == []
    assert build(doc, 0, offset, Workspace(WorkspaceIndex(), None, "pkg/app.py")) == []


def test_render_uses_the_models_file_separator_where_it_has_one(app_index):
    doc, offset = app_doc()
    start, end = near_cursor(doc, offset)
    snippets = build(doc, start, end, Workspace(app_index, None, "pkg/app.py"))
    text = render(snippets, "fim-qwen", "python")
    assert text.startswith("<|file_sep|>pkg/models.py\ndef make_user(")
    assert text.count("<|file_sep|>") == 2  # grouped by path


# ----------------------------------------------------------------------------- the ring

def chunk(*words: str) -> str:
    return "\n".join(f"{w} = {w}_value" for w in words)


def test_recent_chunks_are_bounded_and_the_oldest_goes_first():
    ring = RecentChunks(capacity=2)
    ring.add("a.py", chunk("alpha", "beta"), 0)
    ring.add("b.py", chunk("gamma", "delta"), 0)
    ring.add("c.py", chunk("epsilon", "zeta"), 0)
    assert len(ring) == 2
    assert ring.similar(chunk("alpha", "beta"), None) == []  # a.py's chunk was evicted
    assert [s.path for s in ring.similar(chunk("gamma", "epsilon"), None)] and \
        {s.path for s in ring.similar(chunk("gamma", "epsilon"), None)} == {"b.py", "c.py"}


def test_a_chunk_edited_again_counts_as_recent():
    ring = RecentChunks(capacity=2)
    ring.add("a.py", chunk("alpha", "beta"), 0)
    ring.add("b.py", chunk("gamma", "delta"), 0)
    ring.add("a.py", chunk("omega", "sigma"), 0)  # the same place of a.py, other text
    ring.add("c.py", chunk("epsilon", "zeta"), 0)
    assert ring.similar(chunk("gamma", "delta"), None) == []  # b.py was the oldest
    assert ring.similar(chunk("omega", "sigma"), None)[0].path == "a.py"


def test_a_near_duplicate_chunk_replaces_the_one_held():
    ring = RecentChunks(capacity=4)
    text = "\n".join(f"value_{i} = compute_{i}(value_{i - 1})" for i in range(1, 200))
    ring.add("a.py", text, 20)
    ring.add("a.py", text, 21)  # the cursor moved a line down: about the same chunk
    assert len(ring) == 1
    (held,) = ring.similar("\n".join(text.splitlines()[5:37]), None)
    assert held.lines[0].startswith("value_6 =")  # the newer window
    ring.add("b.py", text, 21)  # the same text in another file is another chunk
    assert len(ring) == 2
    ring.add("a.py", text, 120)  # another place of a.py
    assert len(ring) == 3
    assert EVICT_SIMILARITY < 1


def test_similar_chunks_rank_by_identifier_overlap_and_skip_the_document_itself():
    ring = RecentChunks()
    ring.add("orders.py", "total = sum(order.price for order in orders)\n"
                          "tax = total * rate\n", 0)
    ring.add("users.py", "user = load_user(name)\nuser.save()\n", 0)
    ring.add("me.py", "total = sum(order.price for order in orders)\n", 0)
    found = ring.similar("subtotal = sum(order.price for order in orders) * rate", "me.py")
    assert [s.path for s in found] == ["orders.py"]  # users.py is below MIN_SIMILARITY
    assert found[0].kind == "similar"
    assert ring.similar("nothing shared here", None) == []
    ring.forget("orders.py")
    assert ring.similar("total = sum(order.price for order in orders)", "me.py") == []


def test_build_adds_similar_chunks_after_definitions_within_the_budget(app_index):
    ring = RecentChunks()
    ring.add("pkg/other.py", "def register(name):\n    user = User(name)\n"
                             "    return make_user(name)\n", 0)
    doc, offset = app_doc()
    start, end = near_cursor(doc, offset)
    snippets = build(doc, start, end, Workspace(app_index, ring, "pkg/app.py"))
    assert [s.kind for s in snippets] == ["definition"] * 4 + ["similar"]
    assert build(doc, start, end, Workspace(app_index, ring, "pkg/app.py"),
                 similar=False)[-1].kind == "definition"


# ----------------------------------------------------------------------------- the server's part

def settled(state, root: Path) -> Path:
    """``root`` taken on and scanned, its files older than the "racily clean" window."""
    old = time.time_ns() - 60_000_000_000
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, ns=(old, old))
    assert state.add_root(root)
    resolved = root.resolve()
    list(state.scan(resolved))
    assert server_ws.RACY not in state._seen[resolved].values()
    return resolved


def touch(path: Path, text: str) -> None:
    """Rewrite ``path`` with an mtime that surely differs from the one recorded."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 5_000_000_000, before + 5_000_000_000))


def test_roots_come_from_workspace_folders_else_the_root(tmp_path):
    from lsprotocol import types

    folders = [types.WorkspaceFolder(uri=(tmp_path / n).as_uri(), name=n) for n in "ab"]
    params = types.InitializeParams(capabilities=types.ClientCapabilities(),
                                    workspace_folders=folders, root_uri="file:///ignored")
    assert server_ws.roots_from(params) == [tmp_path / "a", tmp_path / "b"]
    params = types.InitializeParams(capabilities=types.ClientCapabilities(),
                                    root_uri=tmp_path.as_uri())
    assert server_ws.roots_from(params) == [tmp_path]
    params = types.InitializeParams(capabilities=types.ClientCapabilities(),
                                    root_path=str(tmp_path))
    assert server_ws.roots_from(params) == [tmp_path]
    assert server_ws.roots_from(types.InitializeParams(
        capabilities=types.ClientCapabilities())) == []


def test_a_disk_home_or_temporary_folder_is_not_scanned(tmp_path):
    import tempfile

    assert not server_ws.scannable(Path("/"))
    assert not server_ws.scannable(Path.home())
    assert not server_ws.scannable(Path(tempfile.gettempdir()))
    assert server_ws.scannable(tmp_path)
    state = server_ws.WorkspaceState()
    assert state.add_root(tmp_path) and not state.add_root(tmp_path / "inside")
    assert not server_ws.WorkspaceState(enabled=False).add_root(tmp_path)


def test_a_rescan_reads_only_what_changed_and_forgets_what_went(project):
    state = server_ws.WorkspaceState()
    root = settled(state, project)
    assert state.rescan(root) == (0, 0)  # nothing changed: nothing read
    touch(project / "pkg" / "util.py", "def slugify(text: str, sep: str) -> str: ...\n")
    (project / "pkg" / "new.py").write_text("def fresh(): pass\n")
    (project / "pkg" / "sub" / "forms.py").unlink()
    assert state.rescan(root) == (2, 1)
    assert state.index.get("pkg/util.py").find("slugify").signature == \
        "def slugify(text: str, sep: str) -> str:"
    assert state.index.get("pkg/new.py") is not None
    assert state.index.get("pkg/sub/forms.py") is None
    touch(project / "pkg" / "util.py", "X = 1\n")
    (project / "pkg" / "util.py").write_bytes(b"\x00binary now")
    os.utime(project / "pkg" / "util.py", ns=(1, 1))
    state.rescan(root)
    assert state.index.get("pkg/util.py") is None  # binary now: not held any more


def test_a_file_changed_just_now_is_read_again_on_the_next_rescan(project):
    state = server_ws.WorkspaceState()
    state.add_root(project)
    root = project.resolve()
    list(state.scan(root))  # the files were written just now: their mtimes are not trusted
    assert state._seen[root]["pkg/util.py"] == server_ws.RACY
    read, _ = state.rescan(root)
    assert read == len(state._seen[root])


def test_the_editors_text_of_an_open_document_wins_over_the_disk(project):
    state = server_ws.WorkspaceState()
    root = settled(state, project)
    uri = (project / "pkg" / "util.py").as_uri()
    state.open_uris.add(uri)
    state.refresh(uri, "def typed(a): pass\n", "python", 0)
    touch(project / "pkg" / "util.py", "def on_disk(): pass\n")
    state.rescan(root)
    from lsprotocol import types

    state.apply_events([types.FileEvent(uri=uri, type=types.FileChangeType.Changed)])
    assert state.index.get("pkg/util.py").find("typed") is not None
    state.open_uris.discard(uri)
    state.reread(uri)  # closed: the disk's again
    assert state.index.get("pkg/util.py").find("on_disk") is not None
    assert len(state.recent) == 1


def test_reported_changes_and_deleted_folders(project, tmp_path_factory):
    from lsprotocol import types

    state = server_ws.WorkspaceState()
    settled(state, project)
    touch(project / "pkg" / "util.py", "def renamed(): pass\n")
    shutil.rmtree(project / "pkg" / "sub")
    outside = tmp_path_factory.mktemp("outside") / "x.py"
    outside.write_text("X = 1\n")
    state.apply_events([
        types.FileEvent(uri=(project / "pkg" / "util.py").as_uri(),
                        type=types.FileChangeType.Changed),
        types.FileEvent(uri=(project / "pkg" / "sub").as_uri(),
                        type=types.FileChangeType.Deleted),
        types.FileEvent(uri=outside.as_uri(), type=types.FileChangeType.Created),
    ])
    assert state.index.get("pkg/util.py").find("renamed") is not None
    assert [k for k in state.index._by_path if k.startswith("pkg/sub/")] == []
    assert state.index.key(outside) is None and len(state.index) == 6


def test_a_removed_root_is_forgotten_and_its_scan_stops(project, tmp_path_factory):
    other = write(tmp_path_factory.mktemp("other"), {"lib/tool.py": "def tool(): pass\n"})
    state = server_ws.WorkspaceState()
    settled(state, other)
    assert state.add_root(project)
    keys = state.scan(project.resolve())
    next(keys)
    assert state.remove_root(project) >= 1
    assert list(keys) == []
    assert sorted(state.index._by_path) == ["lib/tool.py"]
    assert state.index.roots == [other.resolve()]
    assert state.key((project / "pkg" / "util.py").as_uri()) == "util.py"  # outside now
