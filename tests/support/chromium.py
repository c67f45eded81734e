"""Debian's Chromium, headless, driven by Playwright (never `playwright install`: it downloads a browser).

`launch` starts it with the flags that work on these machines (no sandbox as root, no
network of its own); a missing binary fails the test with what to install, it is never
skipped. `contrast` and `text_colours` measure what a page shows. Nothing here is a test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright

__all__ = ["ARTIFACTS", "CHROMIUM", "contrast", "launch", "screenshot", "text_colours"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-gpu", "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def launch(playwright: Playwright) -> Browser:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} not found: run scripts/setup --test (as root it installs Debian's chromium)", pytrace=False)
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as test-artifacts/browser/NAME.png and check it holds a picture."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"{path} is not a real screenshot"
    return path


_COLOURS = """() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest("option, noscript") || !el.checkVisibility()) continue;
    const style = getComputedStyle(el);
    const fg = el instanceof SVGElement ? style.fill : style.color;
    out.push({ text: node.textContent.trim().slice(0, 40), fg: rgb(fg).slice(0, 3), bg: behind(el), tag: el.tagName });
  }
  return out;
}"""


def text_colours(page: Page) -> list[dict[str, Any]]:
    """Every visible text on the page: its colour and the colour behind it (SVG text: its fill)."""
    found: list[dict[str, Any]] = page.evaluate(_COLOURS)
    return found


def contrast(fg: list[float], bg: list[float]) -> float:
    """The WCAG 2 contrast ratio of two sRGB colours (0-255 each)."""

    def luminance(c: list[float]) -> float:
        lin = [(v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
