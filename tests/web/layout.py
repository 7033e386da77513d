"""Layout checks run inside the page: nothing scrolls sideways, sticks out of the viewport or overlaps.

``layout_problems(page)`` returns a list of human-readable problems (empty when the layout is sound).
Elements inside a scrolling container (the log, the manifest table) may be wider than the viewport;
an open autocomplete popup may cover what is below it; both are allowed.
"""

from __future__ import annotations

from typing import Any

#: Boxes compared with each other: text blocks, controls and the package chips.
CHECKED = (
    "h1, h2, h3, p, label, legend, button, a, input, select, textarea, code, summary, dt, dd, th, td,"
    " pre, img, .chip, .step-label, .badge"
)

_SCRIPT = """
(selector) => {
  const problems = [];
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth > width + 1) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth}px > ${width}px`);
  }
  const describe = (el) => {
    const id = el.id ? `#${el.id}` : "";
    const cls = el.classList.length ? `.${[...el.classList].join(".")}` : "";
    const text = (el.textContent || el.value || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return `<${el.tagName.toLowerCase()}${id}${cls}> "${text}"`;
  };
  const scroller = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (/(auto|scroll|hidden)/.test(getComputedStyle(p).overflowX)) return p;
    }
    return null;
  };
  const shown = (el) => {
    if (el.closest('[role="listbox"], .visually-hidden, .offscreen, .skip-link')) return false;
    // The content of a closed <details> keeps a layout box in Chromium but is not shown.
    const closed = "details:not([open])";
    for (let d = el.closest(closed); d; d = d.parentElement && d.parentElement.closest(closed)) {
      if (!d.querySelector(":scope > summary")?.contains(el)) return false;
    }
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const rect = el.getBoundingClientRect();
    return rect.width > 1 && rect.height > 1;
  };
  const elements = [...document.querySelectorAll(selector)].filter(shown);
  const boxes = [];
  for (const el of elements) {
    const rect = el.getBoundingClientRect();
    const inside = scroller(el);
    if ((rect.right > width + 1 || rect.left < -1) && !inside) {
      const span = `${Math.round(rect.left)}..${Math.round(rect.right)}`;
      problems.push(`${describe(el)} sticks out of the ${width}px viewport (${span})`);
    }
    for (const fragment of el.getClientRects()) {
      if (fragment.width > 1 && fragment.height > 1) boxes.push({ el, rect: fragment, inside });
    }
  }
  const seen = new Set();
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.el === b.el || a.el.contains(b.el) || b.el.contains(a.el)) continue;
      // Parts of a scrolled container that are scrolled out of view are not compared.
      if (a.inside !== b.inside) continue;
      const x = Math.min(a.rect.right, b.rect.right) - Math.max(a.rect.left, b.rect.left);
      const y = Math.min(a.rect.bottom, b.rect.bottom) - Math.max(a.rect.top, b.rect.top);
      if (x > 2 && y > 2) {
        const key = `${describe(a.el)} / ${describe(b.el)}`;
        if (!seen.has(key)) {
          seen.add(key);
          problems.push(`${key} overlap by ${Math.round(x)}x${Math.round(y)}px`);
        }
      }
    }
  }
  return problems;
}
"""


def layout_problems(page: Any) -> list[str]:
    """Everything wrong with the layout of ``page`` as it is now."""
    problems: list[str] = page.evaluate(_SCRIPT, CHECKED)
    return problems
