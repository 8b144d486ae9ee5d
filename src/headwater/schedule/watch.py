"""File arrival: filesystem events on a local folder, and listing (local or `s3://`) as the
fallback and for object stores.

A `Poller` lists the source every `poll_seconds` and reports files (name, size, modified
time) that the file ledger does not know, each once: files that arrived while nothing was
watching are reported at start, and a file a run already landed is not reported again.
A `FolderEvents` watcher reports names as the operating system announces them (inotify on
Linux), which is what keeps the time from a file landing to its run under a second;
polling stays on underneath it, since events can be missed (network filesystems, a folder
created late), but skips names the events reported lately: their run is on its way, and
reporting them again would only make an empty second run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError
from headwater.sources.base import Discovered
from headwater.sources.listing import glob_regex

log = logging.getLogger("headwater.schedule")

Arrivals = Callable[[set[str]], None]
EVENTS_GRACE = 60.0  # seconds: polling leaves names the events reported within this to them
Fingerprint = tuple[str, int, Any]


def fingerprint(found: Discovered) -> Fingerprint:
    return (found.name, found.size, found.modified_at)


class Poller:
    """Lists one source on a thread; reports files the ledger does not know, once each."""

    def __init__(
        self,
        label: str,
        listing: Callable[[], list[Discovered]],
        landed: Callable[[], set[Fingerprint]],
        interval: float,
        on_arrival: Arrivals,
        events: FolderEvents | None = None,
    ) -> None:
        self.label = label
        self.listing = listing
        self.landed = landed
        self.events = events
        self.reported: set[Fingerprint] = set()
        self.interval = interval
        self.on_arrival = on_arrival
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"poll {label}", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def poll(self) -> set[str]:
        """List once; the names new or changed since the previous listing."""
        try:
            listing = self.listing()
        except HeadwaterError as exc:
            if not self._failing:
                log.warning("cannot list %s: %s", self.label, exc)
            self._failing = True
            return set()
        if self._failing:
            log.info("listing %s works again", self.label)
            self._failing = False
        current = {fingerprint(d) for d in listing}
        fresh = current - self.reported
        if fresh:
            # Files already landed (by a run the events triggered) are not news.
            fresh -= self.landed()
        self.reported = (self.reported & current) | fresh
        recent = self.events.recent(EVENTS_GRACE) if self.events is not None else set()
        return {f[0] for f in fresh} - recent

    def _loop(self) -> None:
        while True:
            try:
                new = self.poll()
                if new:
                    self.on_arrival(new)
            except Exception:  # the state database hiccuped: listing goes on next time
                log.exception("%s: checking for new files failed", self.label)
            if self._stop.wait(self.interval):
                return


class FolderEvents:
    """Filesystem events (watchdog) on a local folder, filtered by the source's glob."""

    def __init__(self, label: str, folder: Path, glob: str, on_arrival: Arrivals) -> None:
        self.label = label
        self.folder = folder
        self.pattern = glob_regex(glob)
        self.recursive = "/" in glob
        self.on_arrival = on_arrival
        self._observer: Any = None
        self._reported: dict[str, float] = {}
        self._lock = threading.Lock()

    def report(self, name: str) -> None:
        with self._lock:
            self._reported[name] = time.monotonic()
        self.on_arrival({name})

    def recent(self, within: float) -> set[str]:
        """Names reported in the last `within` seconds."""
        since = time.monotonic() - within
        with self._lock:
            self._reported = {n: t for n, t in self._reported.items() if t >= since}
            return set(self._reported)

    def start(self) -> bool:
        """Start watching; False when events are unavailable (then polling alone serves)."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type not in (
                    "created",
                    "modified",
                    "moved",
                    "closed",
                ):
                    return
                path = event.dest_path if event.event_type == "moved" else event.src_path
                name = watcher.name_of(str(path))
                if name is not None:
                    watcher.report(name)

        if not self.folder.is_dir():
            log.warning(
                "%s: folder %s does not exist; watching by polling", self.label, self.folder
            )
            return False
        try:
            observer = Observer()
            observer.schedule(Handler(), str(self.folder), recursive=self.recursive)
            observer.daemon = True
            observer.start()
        except OSError as exc:  # inotify limits, unsupported filesystem
            log.warning("%s: no filesystem events (%s); watching by polling", self.label, exc)
            return False
        self._observer = observer
        return True

    def name_of(self, path: str) -> str | None:
        """The source-relative name of a path, if the source would read it."""
        try:
            name = Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return None
        if any(p.startswith(".") for p in name.split("/")) or not self.pattern.match(name):
            return None
        return name

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
