"""What the magic puts in a cell: the live step view, ``status`` and ``logs`` results.

:class:`LiveView` is the foreground-follow sink for the notebook: ONE display, updated in place
a few times per second with the step list and the running step's last lines (HTML, and text for
frontends without HTML), never the whole log, so a 100,000-line build leaves a cell of a few
lines. When the build ends the view stays as its summary: steps folded with their durations,
the failing step open.
"""

from __future__ import annotations

import json
from typing import Any

from IPython.display import display

from imagebuild_nb.events import BuildEvent
from imagebuild_nb.progress import html, text
from imagebuild_nb.progress.facts import local_size
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.plan import shown
from imagebuild_nb.progress.view import View


class _Rendered:
    """A mime bundle for ``display``/``update_display``: HTML plus its plain-text twin."""

    def __init__(self, html_text: str, plain: str) -> None:
        self.html, self.plain = html_text, plain

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.plain


def rendered(view: View, *, title: str = "", tail: int = 5, hint: str = "") -> _Rendered:
    body = html.progress_html(view, tail=tail, title=title)
    plain = "\n".join(text.frame(view, tail=tail))
    if hint:
        body += (f'<div class="imagebuild-hint" style="color: {html.states.muted()}; '
                 'white-space: pre-line">'
                 f"{html._esc(hint)}</div>")
        plain += f"\n{hint}"
    return _Rendered(body, plain)


class LiveView:
    """The notebook's :class:`~imagebuild_nb.progress.follow.Sink`: one display per build."""

    def __init__(self, build: Any, *, tail: int = 5, cell: str | None = None) -> None:
        self.build = build
        self.tail = tail
        self.cell = cell  # a %%imagebuild cell's body: failures name the cell's line
        self.view: View | None = None
        self._notes: list[str] = []
        self._handle = display(_Rendered("", "starting …"), display_id=True)

    def event(self, event: BuildEvent, progress: Progress) -> None:
        pass  # the cell only shows views, never event by event

    def draw(self, view: View) -> None:
        self.view = view
        self._update()

    def note(self, line: str) -> None:
        self._notes.append(line)
        self._update()

    def finish(self) -> None:
        """The final summary: steps folded, the failing one open, where to find the full log."""
        if self.build.status in ("built", "exists") and self.build.size is None:
            self.build.size = local_size(self.build.uri)
        view = self.view or Progress().feed_all(self.build.events).view()
        hint = f"full log: %imagebuild logs {self.build.id}" if view.lines else ""
        if self.cell is not None and view.failure is not None:
            where = cell_line(self.cell, view)
            if where is not None:
                hint = f"the failing step is line {where} of this cell\n{hint}".strip()
        self.view = view
        self._update(hint=hint, script=finished_script(view))

    def _update(self, hint: str = "", script: str = "") -> None:
        if self._handle is None or self.view is None:
            return
        notes = "\n".join(self._notes)
        bundle = rendered(self.view, title=self.build.uri, tail=self.tail,
                          hint="\n".join(x for x in (notes, hint) if x))
        bundle.html += script
        self._handle.update(bundle)


class StatusView:
    """``%imagebuild status``: the result card, with the steps so far (n/m, elapsed)."""

    def __init__(self, build: Any, progress: Progress) -> None:
        self.build, self.progress = build, progress

    def _repr_html_(self) -> str:
        view = self.progress.view()
        steps = html.progress_html(view) if view.steps or not self.build.done else ""
        return html.card_html(self.build) + steps

    def __repr__(self) -> str:
        view = self.progress.view()
        lines = [f"{self.build.uri}: {self.build.status}"]
        if view.steps or not self.build.done:
            lines += text.frame(view)
        return "\n".join(lines)


class LogText(str):
    """A build's log with a header line per step; shown without quotes."""

    @classmethod
    def of(cls, build: Any) -> LogText:
        return cls("\n".join(text.log_lines(build.events)))

    def __repr__(self) -> str:
        return str(self)


def cell_line(body: str, view: View) -> int | None:
    """The line of a ``%%imagebuild`` cell holding the failing step (line 1 is the magic's).

    >>> from imagebuild_nb.progress.view import Failure, StepView
    >>> failed = StepView("2/2", "RUN make all", "failed", 1.0, 0, (), True, 2)
    >>> view = View("failed", "", 1.0, 1, 2, (failed,), failure=Failure("boom", "2/2"))
    >>> cell_line("FROM base\\n# build it\\nRUN make \\\\\\n    all\\n", view)
    4
    """
    failed = [step for step in view.steps if step.state == "failed" and step.number is not None]
    if not failed:
        return None
    wanted = shown(failed[-1].instruction)
    lines = body.splitlines()
    for index, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        joined, end = line.strip(), index
        while joined.endswith("\\") and end + 1 < len(lines):  # continuation lines
            end += 1
            joined = joined[:-1] + " " + lines[end].strip()
        if shown(joined) == wanted:
            return index + 2  # the cell's first line is %%imagebuild
    return None


_MARK = {"built": "✓", "failed": "✗", "cancelled": "■"}


def finished_script(view: View) -> str:
    """Tell a user who looked away that the build ended: the tab's title (until they come back)
    and, where the browser already allows notifications, a notification. Runs once, in trusted
    output only (JupyterLab and Notebook 7 run scripts of outputs they produced themselves)."""
    if not view.finished:
        return ""
    # JSON is a JavaScript string literal; "</" escaped, so no text can end the script early.
    text = json.dumps(f"{_MARK.get(view.status, '')} {view.header}".strip()).replace("</", "<\\/")
    return "<script>" + _TITLE_SCRIPT.replace("TEXT", text) + "</script>"


# Several builds may end while the user is away: the latest one's mark goes over the page's own
# title (kept once, on window), and coming back restores that title, not another mark. The page
# may set its own title meanwhile (JupyterLab does when the notebook's state changes): that
# becomes the title to restore, and the mark goes back over it.
_TITLE_SCRIPT = """(() => {
  if (!document.hidden && document.hasFocus()) return;
  const text = TEXT, w = window;
  if (w.imagebuildTitle === undefined) w.imagebuildTitle = document.title;
  w.imagebuildMark = text + ' · ';
  const mark = () => { document.title = w.imagebuildMark + w.imagebuildTitle; };
  mark();
  const element = document.querySelector('title');
  if (!w.imagebuildObserver && element) {
    w.imagebuildObserver = new MutationObserver(() => {
      if (w.imagebuildTitle === undefined || document.title.startsWith(w.imagebuildMark)) return;
      w.imagebuildTitle = document.title;
      mark();
    });
    w.imagebuildObserver.observe(element, {childList: true, characterData: true, subtree: true});
  }
  const back = () => {
    if (document.hidden) return;
    document.removeEventListener('visibilitychange', back);
    window.removeEventListener('focus', back);
    if (w.imagebuildTitle === undefined) return;
    const title = w.imagebuildTitle;
    delete w.imagebuildTitle;
    document.title = title;
  };
  document.addEventListener('visibilitychange', back);
  window.addEventListener('focus', back);
  if (window.Notification && Notification.permission === 'granted') {
    new Notification('imagebuild', {body: text});
  }
})();"""
