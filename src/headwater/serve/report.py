"""`headwater report`: one dashboard as a PNG or PDF, for an email or a slide.

The web application runs on a free loopback port in a background thread;
headless Chromium (Playwright) opens `/dashboards/<name>`, waits until every
panel (`[data-panel]`) has drawn, and takes a full-page screenshot or prints a
one-page PDF as wide as the window. The browser is the system's Chromium
(`$HEADWATER_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome`
on the PATH), else the one `playwright install chromium` downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from headwater.errors import ConfigError, TerminalError
from headwater.project import Project

CHROMIUM_ENV = "HEADWATER_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# No sandbox: Chromium's needs user namespaces, missing in most containers; the page is
# the project's own dashboard on 127.0.0.1.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
SUFFIXES = (".png", ".pdf")
DEFAULT_WIDTH = 1400
DEFAULT_TIMEOUT = 60.0

# True once the page has panels and each has drawn: the dashboard page marks a panel
# `drawn` (a chart once vega-embed has drawn its SVG; number and table panels at once),
# or `error` when a chart cannot be drawn (the reason is shown in its place).
DRAWN_JS = """() => {
  const panels = Array.from(document.querySelectorAll('[data-panel]'));
  return panels.length > 0 && panels.every((p) =>
    p.classList.contains('drawn') || p.classList.contains('error'));
}"""


# The image is the dashboard alone: no navigation bar.
REPORT_CSS = "nav.top { display: none !important; }"


class ReportError(TerminalError):
    """The dashboard could not be drawn (browser missing, page error, timeout)."""


def chromium_path() -> str | None:
    """The Chromium to drive; None lets Playwright use its own download."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def serving(project: Project, app: Any = None) -> Iterator[str]:
    """The web application (`app`, else `create_app(project)`) on a free 127.0.0.1 port,
    in a thread: yields its base URL."""
    import uvicorn

    from headwater.serve.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app if app is not None else create_app(project),
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="headwater-serve", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ReportError("the web application did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def launch(playwright: Any) -> Any:
    """Headless Chromium (see `chromium_path`)."""
    from playwright.sync_api import Error as PlaywrightError

    path = chromium_path()
    try:
        return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except PlaywrightError as exc:
        hint = (
            f"set {CHROMIUM_ENV} to a Chromium or Chrome executable"
            if path is None
            else f"{path} did not start"
        )
        raise ReportError(f"cannot start headless Chromium: {hint} ({exc})") from None


def wait_drawn(page: Any, timeout: float) -> None:
    """Wait until every panel of the page has drawn."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.wait_for_function(DRAWN_JS, timeout=timeout * 1000)
    except PlaywrightError:
        pending = page.evaluate(
            "() => Array.from(document.querySelectorAll('[data-panel]'))"
            ".filter((p) => !p.classList.contains('drawn') && !p.classList.contains('error'))"
            ".map((p) => p.closest('section')?.querySelector('h2')?.innerText"
            " || p.getAttribute('data-panel'))"
        )
        total = page.evaluate("() => document.querySelectorAll('[data-panel]').length")
        what = (
            "waiting for: " + ", ".join(str(p) for p in pending)
            if total
            else "no panel on the page"
        )
        raise ReportError(
            f"the dashboard did not finish drawing within {timeout:g} s ({what})"
        ) from None


def check_request(project: Project, dashboard: str, out: Path) -> None:
    """Refuse a bad output name or an unknown dashboard before starting anything."""
    from headwater.serve.dashboards import load_dashboards

    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out {out}: the file name must end in .png or .pdf")
    known = load_dashboards(project)
    if dashboard not in known:
        listing = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"no dashboard {dashboard!r} in {project.dashboards_dir} ({listing})")


def render_report(
    project: Project,
    dashboard: str,
    out: Path,
    *,
    width: int = DEFAULT_WIDTH,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Draw `dashboard` into `out` (.png: full-page screenshot; .pdf: one page).

    The browser is driven from a thread of its own, so this works from any caller (one
    already inside Playwright's sync API or an asyncio loop included).
    """
    check_request(project, dashboard, out)
    if not 320 <= width <= 10_000:
        raise ConfigError(f"--width {width}: expected 320 to 10000 pixels")
    out.parent.mkdir(parents=True, exist_ok=True)
    with serving(project) as base:
        url = f"{base}/dashboards/{quote(dashboard)}"
        failure: list[BaseException] = []

        def draw() -> None:
            try:
                _draw(url, dashboard, out, width, timeout)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=draw, name="headwater-report", daemon=True)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
    return out


def _draw(url: str, dashboard: str, out: Path, width: int, timeout: float) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            response = page.goto(url, wait_until="load")
            if response is None or not response.ok:
                status = "no answer" if response is None else f"HTTP {response.status}"
                raise ReportError(f"dashboard {dashboard!r}: the page answered {status}")
            wait_drawn(page, timeout)
            page.add_style_tag(content=REPORT_CSS)
            if errors:
                raise ReportError(f"dashboard {dashboard!r}: the page failed: {errors[0]}")
            if out.suffix.lower() == ".png":
                page.screenshot(path=str(out), full_page=True)
            else:
                page.emulate_media(media="screen")
                height = int(page.evaluate("document.documentElement.scrollHeight"))
                page.pdf(
                    path=str(out),
                    width=f"{width}px",
                    height=f"{height + 16}px",
                    print_background=True,
                    margin={"top": "0", "bottom": "0", "left": "0", "right": "0"},
                )
        except PlaywrightError as exc:
            raise ReportError(f"dashboard {dashboard!r}: {exc}") from None
        finally:
            browser.close()
