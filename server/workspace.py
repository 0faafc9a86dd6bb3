"""The workspace index in the language server: one :class:`WorkspaceIndex` and one
:class:`RecentChunks` per session, filled and kept current here.

- **Roots**: the workspace folders of ``initialize`` (else ``rootUri``/``rootPath``) and
  ``workspace/didChangeWorkspaceFolders``. The filesystem's root, the home folder and the
  temporary folder itself are never scanned (an editor started outside any project); open
  documents still count.
- **Scan**: after ``initialized``, each root in a worker thread, a slice of the
  :meth:`WorkspaceIndex.scan` generator per hop, with work-done progress where the client
  shows it. Completions are served meanwhile from what is indexed so far.
- **Current**: open documents are re-outlined from the editor's text (at most every
  :data:`REINDEX_S` per document, in a thread) and their chunk around the cursor goes to
  the ring; files on disk through ``workspace/didChangeWatchedFiles`` where the client
  registers watchers, else a periodic mtime-based re-scan (``index_rescan_s``).

The synchronous parts (:meth:`WorkspaceState.rescan`, :meth:`WorkspaceState.apply_events`,
:func:`roots_from`) are plain functions of files on disk; the handlers only forward.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath

from lsprotocol import types
from pygls.uris import to_fs_path

from covey_specialists.document import Document, language_for
from covey_specialists.repo_context import RecentChunks, Workspace
from covey_specialists.workspace import INDEXED, WorkspaceIndex, scannable, walk

log = logging.getLogger("covey.workspace")

REINDEX_S = 0.5
"""An open document being edited is re-outlined at most this often."""
STEP_FILES = 200
STEP_S = 0.25
"""One hop of the scan thread: at most this many files or this long, then progress."""
RACY_S = 2.0
"""A file modified this recently may change again within its mtime's granularity: it is
read again on the next re-scan whatever its mtime (git's "racily clean")."""
RACY = -1
WATCH_GLOB = "**/*.{py,pyi,js,mjs,cjs,jsx,ts,mts,cts,tsx}"
WATCH_ID = "covey-workspace-index"
_tokens = itertools.count(1)


def path_of(uri: str) -> Path | None:
    """The file a ``file:`` URI names; None for other schemes (untitled, vscode-notebook…)."""
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def roots_from(params: types.InitializeParams) -> list[Path]:
    """The folders ``initialize`` names: its workspace folders, else the root."""
    uris = [f.uri for f in params.workspace_folders or ()]
    if not uris and params.root_uri:
        uris = [params.root_uri]
    paths = [path_of(uri) for uri in uris]
    if not uris and params.root_path:
        paths = [Path(params.root_path)]
    return [p for p in paths if p is not None]


def _stamp(path: Path) -> int | None:
    """What says a file changed: its mtime (ns), :data:`RACY` when that is too recent to
    trust; None when it is gone."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    return RACY if time.time_ns() - mtime < RACY_S * 1e9 else mtime


class WorkspaceState:
    """The index, the ring and what the server knows of each root; safe to call from the
    worker thread (disk) and the event loop (documents, completions)."""

    def __init__(self, enabled: bool = True, index: WorkspaceIndex | None = None,
                 recent: RecentChunks | None = None):
        self.enabled = enabled
        self.index = index or WorkspaceIndex()
        self.recent = recent or RecentChunks()
        self.closed = threading.Event()
        self._seen: dict[Path, dict[str, int]] = {}
        """Per root: each file's stamp when last read (or found unreadable)."""
        self._stops: dict[Path, threading.Event] = {}
        self._keys: dict[str, str] = {}
        self.open_uris: set[str] = set()
        """Documents open in the editor: their text is the editor's, not the disk's."""
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ keys
    def key(self, uri: str) -> str:
        """The document's path relative to its root, else its file name."""
        found = self._keys.get(uri)
        if found is None:
            path = path_of(uri)
            found = (self.index.key(path) if path is not None else None) \
                or (path.name if path is not None else PurePath(uri.rsplit("/", 1)[-1]).name) \
                or uri
            self._keys[uri] = found
        return found

    @property
    def open_keys(self) -> set[str]:
        return {self.key(uri) for uri in list(self.open_uris)}

    def in_root(self, uri: str) -> bool:
        path = path_of(uri)
        return path is not None and self.index.key(path) is not None

    def context(self, uri: str) -> Workspace:
        """What a plan may read beyond the document at ``uri``."""
        return Workspace(self.index, self.recent, self.key(uri))

    # ------------------------------------------------------------------ roots
    def add_root(self, root: Path) -> bool:
        """Take ``root`` on (False: a root already, inside one, or not to be scanned)."""
        if not self.enabled or not scannable(root):
            return False
        root = root.resolve()
        with self._lock:
            if any(root == r or r in root.parents for r in self._seen):
                return False
            self._seen[root] = {}
            self._stops[root] = threading.Event()
            if root not in self.index.roots:
                self.index.roots.append(root)
        self._keys.clear()
        return True

    def remove_root(self, root: Path) -> int:
        """Forget ``root`` and the modules only it held; how many."""
        root = root.resolve()
        with self._lock:
            seen = self._seen.pop(root, None)
            stop = self._stops.pop(root, None)
            others = set().union(*self._seen.values()) if self._seen else set()
        if stop is not None:
            stop.set()
        self.index.roots[:] = [r for r in self.index.roots if r.resolve() != root]
        self._keys.clear()
        gone = [key for key in seen or () if key not in others]
        for key in gone:
            self.index.remove(key)
        return len(gone)

    @property
    def roots(self) -> list[Path]:
        return list(self._seen)

    def _stopped(self, root: Path):
        stop = self._stops.get(root) or threading.Event()
        return lambda: stop.is_set() or self.closed.is_set()

    # ------------------------------------------------------------------ the scan
    def scan(self, root: Path) -> Iterator[str]:
        """:meth:`WorkspaceIndex.scan` of ``root``, recording each file's stamp."""
        seen = self._seen.get(root)
        if seen is None:
            return
        stopped = self._stopped(root)
        for key in self.index.scan(root, should_stop=stopped):
            if stopped():  # the root was removed while this file was read
                if root not in self._seen:
                    self.index.remove(key)
                return
            stamp = _stamp(root / key)
            if stamp is not None:
                seen[key] = stamp
            yield key

    @staticmethod
    def step(keys: Iterator[str]) -> int | None:
        """Advance a scan by one hop (in the worker thread): how many files it indexed,
        None when it is over."""
        count, deadline = 0, time.monotonic() + STEP_S
        for _ in keys:
            count += 1
            if count >= STEP_FILES or time.monotonic() > deadline:
                return count
        return count or None

    def rescan(self, root: Path) -> tuple[int, int]:
        """Read again the files under ``root`` whose mtime changed, index new ones, forget
        deleted ones (the fallback where the client reports no changes); (read, removed).

        Cheap: one listing and one ``stat`` per file; a walk cut short (stopped, or more
        files than the index holds) removes nothing."""
        seen = self._seen.get(root)
        if seen is None:
            return 0, 0
        stopped = self._stopped(root)
        found: set[str] = set()
        read = 0
        complete = True
        open_keys = self.open_keys
        for path in walk(root, should_stop=stopped):
            if len(found) > self.index.max_files:
                complete = False
                break
            key = path.relative_to(root).as_posix()
            stamp = _stamp(path)
            if stamp is None:
                continue
            found.add(key)
            if seen.get(key) == stamp != RACY:
                continue
            seen[key] = stamp
            if key in open_keys:
                continue
            read += 1
            if self.index.add_file(path, key) is None:
                self.index.remove(key)  # now binary, too large or unreadable
        if stopped() or not complete:
            return read, 0
        gone = [key for key in seen if key not in found]
        for key in gone:
            del seen[key]
            if key not in open_keys:
                self.index.remove(key)
        return read, len(gone)

    def apply_events(self, events: Iterable[types.FileEvent]) -> int:
        """Files created, changed or deleted on disk, as the client reports them; how many
        changed the index."""
        applied = 0
        open_keys = self.open_keys
        for event in events:
            path = path_of(event.uri)
            where = self._locate(path) if path is not None else None
            if where is None:
                continue
            root, key = where
            seen = self._seen[root]
            if event.type == types.FileChangeType.Deleted:
                for gone in [k for k in seen if k == key or k.startswith(key + "/")]:
                    del seen[gone]
                if key not in open_keys:
                    self.index.remove(key)
                    applied += self.index.remove_under(key) + 1
                continue
            if key in open_keys or language_for(None, key) not in INDEXED:
                continue
            stamp = _stamp(path)
            if stamp is None:
                continue
            seen[key] = stamp
            if self.index.add_file(path, key) is None:
                self.index.remove(key)
            applied += 1
        return applied

    def _locate(self, path: Path) -> tuple[Path, str] | None:
        for root in list(self._seen):
            try:
                return root, path.resolve().relative_to(root).as_posix()
            except (ValueError, OSError):
                continue
        return None

    # ------------------------------------------------------------------ documents
    def refresh(self, uri: str, text: str, language: str | None, line: int) -> None:
        """An open document's text (in the worker thread): its chunk around ``line`` into
        the ring, its outline into the index when it lies in a root."""
        key = self.key(uri)
        self.recent.add(key, text, line)
        if self.enabled and self.in_root(uri):
            self.index.add_text(key, text, language)

    def reread(self, uri: str) -> None:
        """A document closed: the disk's text is the truth again."""
        path = path_of(uri)
        if self.enabled and path is not None and self.in_root(uri):
            key = self.key(uri)
            if uri not in self.open_uris and self.index.add_file(path, key) is None:
                self.index.remove(key)


class WorkspaceService:
    """The session's :class:`WorkspaceState` wired to the server: background scans with
    progress, watchers or the re-scan, and per-document throttled refreshes."""

    def __init__(self, ls, state: WorkspaceState, roots: list[Path], rescan_s: float):
        self.ls = ls
        self.state = state
        self.rescan_s = rescan_s
        self._scans: asyncio.Queue[Path] = asyncio.Queue()
        self._jobs: dict[str, asyncio.Task] = {}
        self._dirty: dict[str, int] = {}
        """Documents changed since their last refresh, with the cursor's line."""
        self._loops: list[asyncio.Task] = []
        self.scanning = False
        self.started = False
        self._watching = False
        for root in roots:  # known from initialize on, scanned after initialized
            self.add_root(root)

    def context(self, uri: str) -> Workspace:
        return self.state.context(uri)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """After ``initialized``: scan the roots, then watch them."""
        if not self.state.enabled:
            return
        self.started = True
        self._loops.append(self.ls.spawn(self._scanner()))
        if self.state.roots:
            await self._keep_current()

    async def _keep_current(self) -> None:
        """Once there is a root: the client's reports of changed files, else re-scans."""
        if self._watching:
            return
        self._watching = True
        if not await self._watch() and self.rescan_s > 0:
            self._loops.append(self.ls.spawn(self._rescanner()))

    def stop(self) -> None:
        """At shutdown: a scan stops between two files, and nothing starts again."""
        self.state.closed.set()
        for task in [*self._loops, *self._jobs.values()]:
            task.cancel()

    def add_root(self, root: Path) -> None:
        if self.state.add_root(root):
            self._scans.put_nowait(root.resolve())
            if self.started and not self._watching:
                self.ls.spawn(self._keep_current())
        else:
            log.info("not indexing %s (off, indexed already, or the home, temporary or "
                     "filesystem root folder)", root)

    def remove_root(self, root: Path) -> None:
        log.info("workspace folder %s removed: %d modules forgotten", root,
                 self.state.remove_root(root))

    async def _scanner(self) -> None:
        while not self.state.closed.is_set():
            root = await self._scans.get()
            if root in self.state.roots:
                self.scanning = True
                try:
                    await self._scan(root)
                except Exception:  # noqa: BLE001 - the index is a help, never a failure
                    log.exception("scanning %s failed", root)
                finally:
                    self.scanning = self._scans.qsize() > 0

    async def _scan(self, root: Path) -> None:
        started = time.monotonic()
        token = await self._progress_begin(root)
        keys, total = self.state.scan(root), 0
        try:
            while True:
                count = await asyncio.to_thread(self.state.step, keys)
                if count is None:
                    break
                total += count
                if token is not None:
                    self.ls.work_done_progress.report(token, types.WorkDoneProgressReport(
                        message=f"{total} files"))
        finally:
            if token is not None:
                self.ls.work_done_progress.end(token, types.WorkDoneProgressEnd(
                    message=f"{total} files indexed"))
        log.info("indexed %d files of %s in %.1f s (%d modules held)", total, root,
                 time.monotonic() - started, len(self.state.index))

    async def _progress_begin(self, root: Path) -> str | None:
        window = self.ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return None
        token = f"covey-index-{next(_tokens)}"
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception as exc:  # noqa: BLE001 - no progress bar, same scan
            log.info("no progress for the scan: %s", exc)
            return None
        self.ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title="Covey: indexing", message=root.name, cancellable=False))
        return token

    async def _watch(self) -> bool:
        """Ask the client to report changed files; False where it cannot."""
        caps = self.ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if not (watched and watched.dynamic_registration):
            return False
        options = types.DidChangeWatchedFilesRegistrationOptions(watchers=[
            types.FileSystemWatcher(glob_pattern=WATCH_GLOB),
            types.FileSystemWatcher(glob_pattern="**/*", kind=types.WatchKind.Delete),
        ])  # the second: a deleted folder
        try:
            await self.ls.client_register_capability_async(types.RegistrationParams(
                registrations=[types.Registration(
                    id=WATCH_ID, method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                    register_options=options)]))
        except Exception as exc:  # noqa: BLE001 - then the re-scan keeps it current
            log.info("the client did not register file watchers (%s); re-scanning", exc)
            return False
        return True

    async def _rescanner(self) -> None:
        while not self.state.closed.is_set():
            await asyncio.sleep(self.rescan_s)
            if self.scanning:
                continue
            for root in self.state.roots:
                try:
                    read, removed = await asyncio.to_thread(self.state.rescan, root)
                except Exception:  # noqa: BLE001 - try again next time
                    log.exception("re-scanning %s failed", root)
                    continue
                if read or removed:
                    log.info("re-scan of %s: %d files read, %d removed", root, read, removed)

    async def watched(self, events: list[types.FileEvent]) -> None:
        if self.state.enabled and events:
            await asyncio.to_thread(self.state.apply_events, events)

    # ------------------------------------------------------------------ documents
    def opened(self, doc: Document) -> None:
        if doc.language not in INDEXED or doc.is_binary:
            return
        self.state.open_uris.add(doc.uri)
        self._refresh_soon(doc.uri, 0, delay=0.0)

    def changed(self, doc: Document, changes) -> None:
        if doc.uri not in self.state.open_uris:
            return  # not a document the index follows
        line = 0
        for change in changes:
            rng = getattr(change, "range", None)
            line = rng.start.line + change.text.count("\n") if rng is not None else 0
        self._refresh_soon(doc.uri, line, delay=REINDEX_S)

    def saved(self, uri: str) -> None:
        if uri in self.state.open_uris:
            self._refresh_soon(uri, self._dirty.get(uri, 0), delay=0.0)

    def closed(self, uri: str) -> None:
        job = self._jobs.pop(uri, None)
        if job is not None:
            job.cancel()
        self._dirty.pop(uri, None)
        if uri in self.state.open_uris:
            self.state.open_uris.discard(uri)
            self.ls.spawn(asyncio.to_thread(self.state.reread, uri))

    def _refresh_soon(self, uri: str, line: int, delay: float) -> None:
        """Throttled: at most one refresh of ``uri`` per ``delay``, always one after the
        last change; never on the keystroke's path."""
        self._dirty[uri] = line
        if uri not in self._jobs:
            self._jobs[uri] = self.ls.spawn(self._refresh(uri, delay))

    async def _refresh(self, uri: str, delay: float) -> None:
        try:
            while True:
                await asyncio.sleep(delay)
                doc = self.ls.require_session().store.get(uri)
                line = self._dirty.pop(uri, 0)
                if doc is not None:
                    await asyncio.to_thread(self.state.refresh, uri, doc.text, doc.language,
                                            line)
                if uri not in self._dirty:  # nothing changed meanwhile
                    return
                delay = REINDEX_S
        finally:
            if self._jobs.get(uri) is asyncio.current_task():
                del self._jobs[uri]


def register(ls) -> None:
    """Workspace folders, watched files and saves (open, change and close are app's)."""

    @ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(ls, params: types.DidChangeWorkspaceFoldersParams) -> None:
        service = ls.require_session().workspace
        for folder in params.event.removed:
            path = path_of(folder.uri)
            if path is not None:
                service.remove_root(path)
        for folder in params.event.added:
            path = path_of(folder.uri)
            if path is not None:
                service.add_root(path)

    @ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def files_changed(ls, params: types.DidChangeWatchedFilesParams) -> None:
        await ls.require_session().workspace.watched(list(params.changes))

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls, params: types.DidSaveTextDocumentParams) -> None:
        ls.require_session().workspace.saved(params.text_document.uri)
