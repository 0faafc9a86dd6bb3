"""The workspace index in the server: a definition in a file the editor never opened reaches
the completion prompt, changes on disk follow (reported by the client, or found by the
server's own re-scan), progress is shown, and odd workspaces do not hurt. The engine is a
scripted fake, so the prompt it received can be read."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import pytest
from helpers.fake_openai import FakeOpenAI, Scripted
from helpers.lsp_client import capabilities, end_of, inline_params, make_client, open_doc
from lsprotocol import types
from pytest_lsp import ClientServerConfig

SERVER = [sys.executable, "-m", "covey_server", "-vv"]

MODELS = '''class User:
    """Someone who signs in."""

    def __init__(self, name: str):
        self.name = name


def make_user(name: str) -> User:
    """A user, saved."""
    return User(name)
'''
NEW_MODELS = MODELS.replace("def make_user(name: str) -> User:",
                            "def make_user(name: str, email: str) -> User:")
APP = '''from pkg.models import make_user


def signup(name):
    user = make_user(name)
    return '''
CURSOR = end_of(APP, "    return ")
SIGNATURE = "def make_user(name: str) -> User:"
NEW_SIGNATURE = "def make_user(name: str, email: str) -> User:"


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models.py").write_text(MODELS)
    (tmp_path / "pkg" / "app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def fake():
    with FakeOpenAI(Scripted.text("user")) as fake:
        yield fake


async def start(fake, root: Path | None, *, caps: types.ClientCapabilities | None = None,
                **options):
    """A started client; ``root`` is its one workspace folder (None: no folder at all)."""
    home = tempfile.mkdtemp(prefix="covey-lsp-home-")
    config = ClientServerConfig(server_command=SERVER, client_factory=make_client,
                                server_env={**os.environ, "COVEY_HOME": home})
    client = await config.start()
    client.fake = fake
    client.registrations = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(ls, params: types.RegistrationParams):
        client.registrations.extend(params.registrations)

    folders = [types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root else None
    await client.initialize_session(types.InitializeParams(
        capabilities=caps or capabilities(),
        initialization_options={"engine": {"url": fake.url}, "debounceMs": 0,
                                "specialists": {"completion": {"minShowLogprob": "-inf"}},
                                **options},
        root_uri=root.as_uri() if root else None, workspace_folders=folders))
    return client


async def stop(client) -> None:
    await client.shutdown_session()
    await client.stop()


def ended(client) -> list:
    """The progress reports of the scans that ended."""
    return [reports for reports in client.progress_reports.values()
            if reports and isinstance(reports[-1], types.WorkDoneProgressEnd)]


async def scanned(client, scans: int = 1) -> None:
    for _ in range(400):
        if len(ended(client)) >= scans:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the scan did not end: {client.progress_reports}")


class Editor:
    """``pkg/app.py`` open in the client; each ask edits the file's end (a new version, so
    the server asks the engine again) and returns the prompt the engine got."""

    def __init__(self, client, root: Path | None):
        self.client = client
        self.uri = (root / "pkg" / "app.py").as_uri() if root else "file:///nowhere/app.py"
        self.version = 1
        open_doc(client, self.uri, APP)

    async def ask(self) -> tuple[types.InlineCompletionList, str]:
        self.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(
                APP + "\n" * self.version)]))
        before = len(self.client.fake.completions())
        result = await self.client.text_document_inline_completion_async(
            inline_params(self.uri, *CURSOR))
        requests = self.client.fake.completions()
        assert len(requests) == before + 1, "the engine was not asked"
        return result, requests[-1].body["prompt"]

    async def until(self, condition, what: str) -> str:
        prompt = ""
        for _ in range(60):
            _, prompt = await self.ask()
            if condition(prompt):
                return prompt
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what} never reached the prompt:\n{prompt}")


async def test_a_file_never_opened_reaches_the_prompt(fake, project):
    client = await start(fake, project)
    try:
        await scanned(client)
        editor = Editor(client, project)
        result, prompt = await editor.ask()
        assert SIGNATURE in prompt
        assert "A user, saved." in prompt
        assert "pkg/models.py" in prompt  # the snippet's path
        assert [item.insert_text for item in result.items] == ["user"]
    finally:
        await stop(client)


async def test_a_change_reported_by_the_client_reaches_the_next_prompt(fake, project):
    client = await start(fake, project, indexRescanS=0)  # only the client's reports
    try:
        await scanned(client)
        (registration,) = client.registrations
        assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
        globs = [w["globPattern"] for w in registration.register_options["watchers"]]
        assert "**/*.{py,pyi,js,mjs,cjs,jsx,ts,mts,cts,tsx}" in globs
        editor = Editor(client, project)
        _, prompt = await editor.ask()
        assert SIGNATURE in prompt
        (project / "pkg" / "models.py").write_text(NEW_MODELS)
        await asyncio.sleep(0.3)
        _, prompt = await editor.ask()
        assert SIGNATURE in prompt  # nothing told the server yet
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=(project / "pkg" / "models.py").as_uri(),
                            type=types.FileChangeType.Changed)]))
        prompt = await editor.until(lambda p: NEW_SIGNATURE in p, "the new signature")
        assert SIGNATURE not in prompt
        (project / "pkg" / "models.py").unlink()
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=(project / "pkg").as_uri(),  # the folder went
                            type=types.FileChangeType.Deleted)]))
        await editor.until(lambda p: "make_user(name: str" not in p, "the deletion")
    finally:
        await stop(client)


async def test_without_reports_the_servers_rescan_finds_changes(fake, project):
    caps = capabilities()
    caps.workspace.did_change_watched_files = None  # a client that watches nothing
    client = await start(fake, project, caps=caps, indexRescanS=0.2)
    try:
        await scanned(client)
        assert client.registrations == []
        editor = Editor(client, project)
        _, prompt = await editor.ask()
        assert SIGNATURE in prompt
        (project / "pkg" / "models.py").write_text(NEW_MODELS)
        prompt = await editor.until(lambda p: NEW_SIGNATURE in p, "the new signature")
        assert SIGNATURE not in prompt
        (project / "pkg" / "models.py").unlink()
        await editor.until(lambda p: "make_user(name: str" not in p, "the deletion")
    finally:
        await stop(client)


async def test_an_editor_without_a_workspace_folder_still_gets_completions(fake):
    client = await start(fake, None)
    try:
        editor = Editor(client, None)
        result, prompt = await editor.ask()
        assert [item.insert_text for item in result.items] == ["user"]
        assert "def make_user" not in prompt
        assert client.progress_reports == {}  # nothing was scanned
    finally:
        await stop(client)


async def test_progress_reaches_a_client_that_shows_it_and_only_such_a_client(fake, project):
    client = await start(fake, project)
    try:
        await scanned(client)
        (reports,) = client.progress_reports.values()
        begin, *_, end = reports
        assert isinstance(begin, types.WorkDoneProgressBegin)
        assert begin.title == "Covey: indexing"
        assert end.message == "3 files indexed"
    finally:
        await stop(client)
    caps = capabilities()
    caps.window.work_done_progress = False
    client = await start(fake, project, caps=caps)
    try:
        editor = Editor(client, project)
        await editor.until(lambda p: SIGNATURE in p, "the definition")  # scanned all the same
        assert client.progress_reports == {}
    finally:
        await stop(client)


async def test_turned_off_no_file_is_read(fake, project):
    client = await start(fake, project, workspaceIndex=False)
    try:
        editor = Editor(client, project)
        await asyncio.sleep(0.5)
        _, prompt = await editor.ask()
        assert "def make_user" not in prompt
        assert client.progress_reports == {} and client.registrations == []
    finally:
        await stop(client)


async def test_binaries_and_a_symlink_loop_do_not_hurt(fake, project):
    (project / "blob.py").write_bytes(b"\x00\xff\x00binary" * 5000)
    (project / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000)
    (project / "big.js").write_text("var x = 1;\n" * 60_000)
    os.symlink(project, project / "pkg" / "loop")
    os.symlink(project / "pkg" / "models.py", project / "alias.py")
    os.mkfifo(project / "pipe.py")
    client = await start(fake, project)
    try:
        await scanned(client)
        (reports,) = client.progress_reports.values()
        assert reports[-1].message == "3 files indexed"  # pkg's three, once each
        editor = Editor(client, project)
        result, prompt = await editor.ask()
        assert SIGNATURE in prompt
        assert [item.insert_text for item in result.items] == ["user"]
    finally:
        await stop(client)


async def test_an_open_modules_unsaved_text_wins_over_the_disk(fake, project):
    client = await start(fake, project, indexRescanS=0)
    try:
        await scanned(client)
        editor = Editor(client, project)
        models = (project / "pkg" / "models.py").as_uri()
        open_doc(client, models, MODELS)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=models, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(NEW_MODELS)]))
        prompt = await editor.until(lambda p: NEW_SIGNATURE in p, "the unsaved signature")
        assert SIGNATURE not in prompt
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(models)))  # closed unsaved: the disk's again
        await editor.until(lambda p: SIGNATURE in p, "the saved signature")
    finally:
        await stop(client)


async def test_workspace_folders_added_and_removed(fake, project):
    client = await start(fake, None)
    try:
        editor = Editor(client, project)
        _, prompt = await editor.ask()
        assert SIGNATURE not in prompt
        folder = types.WorkspaceFolder(uri=project.as_uri(), name=project.name)
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])))
        await scanned(client)
        await editor.until(lambda p: SIGNATURE in p, "the added folder's definition")
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])))
        await editor.until(lambda p: SIGNATURE not in p, "the removal")
    finally:
        await stop(client)
