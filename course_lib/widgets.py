"""Interactive explorers that degrade to static output.

`explore(show, **controls)` displays an ipywidgets panel (sliders, dropdowns, text boxes) that calls
`show(**values)` whenever a control changes. The same display also carries the output for the starting
values as plain HTML, so a front end without widgets (a static render, nbconvert, GitHub) shows that
instead of an empty box. Jupyter front ends pick the richest form they can draw.
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from course_lib.tokenizer import BPETokenizer


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


def _displaying(show: Callable[..., Any]) -> Callable[..., None]:
    """`show`, displaying what it returns: `interactive` (unlike `interact`) drops return values, so an
    HTML object returned by `show` would leave the widget's output area empty."""

    @functools.wraps(show)
    def call(**values: Any) -> None:
        result = show(**values)
        if result is not None:
            from IPython.display import display

            display(result)

    return call


class _Explorer:
    """A widget panel with a static HTML fallback in the same display."""

    def __init__(self, show: Callable[..., Any], controls: dict[str, Any]) -> None:
        import ipywidgets  # only where a notebook shows widgets

        self.panel = ipywidgets.interactive(_displaying(show), **controls)
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


# ----------------------------------------------------------------------------------------------------
# Looking at tokens (chapter 1): coloured HTML, and a playground to type into

_PALETTE = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d7f2e3", "#fce1c8", "#dbeff5"]


def tokens_html(tokenizer: BPETokenizer, text: str) -> str:
    """HTML that shows each token of `text` on its own colour, with its id underneath."""
    ids = tokenizer.encode(text)
    cells = []
    for k, (i, piece) in enumerate(zip(ids, tokenizer.token_strings(ids))):
        shown = html.escape(piece).replace(" ", "&nbsp;").replace("\n", "\\n").replace("\t", "\\t") or "&empty;"
        cells.append(f'<span style="display:inline-block;margin:1px;padding:1px 3px;background:{_PALETTE[k % len(_PALETTE)]};'
                     f'border-radius:3px;text-align:center;font-family:monospace">{shown}'
                     f'<br><span style="font-size:70%;color:#555">{i}</span></span>')
    summary = f"<div style='font-size:85%;color:#555'>{len(text.encode('utf-8'))} bytes, {len(ids)} tokens</div>"
    return f"<div style='line-height:1.9'>{''.join(cells)}</div>{summary}"


def token_playground(tokenizer: BPETokenizer, text: str = "Once upon a time, there was a brave fox.") -> _Explorer:
    """A text box whose tokens are shown as you type (a static rendering of `text` without a live front end)."""
    import ipywidgets  # only where a notebook shows widgets
    from IPython.display import HTML

    box = ipywidgets.Textarea(value=text, description="Text:", layout=ipywidgets.Layout(width="95%", height="70px"))
    return explore(lambda text: HTML(tokens_html(tokenizer, text)), text=box)


def loss_mask_html(tokenizer: BPETokenizer, ids: list[int], mask: list[int]) -> str:
    """HTML of a tokenized conversation (chapter 6): tokens that carry loss in green, the rest (prompt,
    role and special tokens) in grey, each with its id underneath."""
    colours = {1: "#c8ecc9", 0: "#e6e6e6"}
    cells = []
    for i, m, piece in zip(ids, mask, tokenizer.token_strings(ids)):
        shown = html.escape(piece).replace(" ", "&nbsp;").replace("\n", "\\n") or "&empty;"
        cells.append(f'<span style="display:inline-block;margin:1px;padding:1px 3px;background:{colours[int(bool(m))]};'
                     f'border-radius:3px;text-align:center;font-family:monospace">{shown}'
                     f'<br><span style="font-size:70%;color:#555">{i}</span></span>')
    summary = (f"<div style='font-size:85%;color:#555'>{len(ids)} tokens, {sum(map(bool, mask))} carry loss "
               "(green); grey tokens are read but not learned</div>")
    return f"<div style='line-height:1.9'>{''.join(cells)}</div>{summary}"
