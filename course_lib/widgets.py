"""Interactive explorers that degrade to static output.

`explore(show, **controls)` displays an ipywidgets panel (sliders, dropdowns, text boxes) that calls
`show(**values)` whenever a control changes. The same display also carries the output for the starting
values as plain HTML, so a front end without widgets (a static render, nbconvert, GitHub) shows that
instead of an empty box. Jupyter front ends pick the richest form they can draw.
"""

from __future__ import annotations

import html
import io
from contextlib import redirect_stdout
from typing import Any, Callable


def _static_html(show: Callable[..., Any], values: dict[str, Any]) -> str:
    """What `show` prints for `values`, as HTML (its return value, if any, is shown too)."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        result = show(**values)
    text = buffer.getvalue()
    if result is not None and hasattr(result, "_repr_html_"):
        return html.escape(text) + result._repr_html_()
    if result is not None:
        text += repr(result)
    return f"<pre>{html.escape(text)}</pre>"


class _Explorer:
    """A widget panel with a static HTML fallback in the same display."""

    def __init__(self, show: Callable[..., Any], controls: dict[str, Any]) -> None:
        import ipywidgets

        self.panel = ipywidgets.interactive(show, **controls)
        self.fallback = _static_html(show, {w._kwarg: w.value for w in self.panel.kwargs_widgets})

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.panel._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle = dict(bundle)
        bundle["text/html"] = self.fallback
        bundle["text/plain"] = "(an interactive explorer; without widgets, the output for its starting values is shown)"
        return bundle


def explore(show: Callable[..., Any], **controls: Any) -> _Explorer:
    """An interactive panel calling `show(**values)`; controls are ipywidgets or `interact` abbreviations.

    Example: `explore(show_story, index=(0, 99), split=["train", "val", "test"])`.
    """
    return _Explorer(show, controls)
