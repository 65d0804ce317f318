"""Headless Chromium for the tests: Debian's `chromium` package driven by Playwright (Playwright's own browser
download cannot run here), with a fresh profile each time and nothing that phones home.

    with headless_chromium() as browser:
        page = browser.new_page()
"""
import contextlib
import pathlib
import shutil
import tempfile

CHROMIUM = pathlib.Path("/usr/bin/chromium")
# Without these a headless Chromium in a sandboxless container fails to start or keeps trying the network
# (component updates, sync, field trials), which on a machine without one only fills the logs with refused connections.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
INSTALL = "apt-get install -y --no-install-recommends chromium"


def missing_reason() -> str | None:
    """Why the browser cannot be started here, or None when it can."""
    if not CHROMIUM.exists():
        return f"Debian's chromium is not installed ({CHROMIUM} is missing): {INSTALL}"
    return None


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 800):
    """A browser context with its own throwaway profile, at width x height CSS pixels."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="textgen-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
                viewport={"width": width, "height": height})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
