"""The widget's full-log view: page through a :class:`~imagebuild_nb.notebook.logview.LogStore`.

Rendering 100,000 lines would freeze the browser, so the full log is shown a page at a time
(``PAGE_LINES`` lines), read from the file on demand. Only the widget's flusher calls
:meth:`LogPager.show`; the page box's changes come back to the widget as queued requests.

>>> from imagebuild_nb.notebook.logview import LogStore
>>> store = LogStore()
>>> for n in range(1200):
...     store.append(f"line {n}")
>>> pager = LogPager()
>>> pager.show(store, None)  # None = the last page
>>> pager.page_number.value, pager.page_number.max
(3, 3)
>>> store.close()
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from imagebuild_nb.notebook.logview import LogStore
from imagebuild_nb.progress import states

PAGE_LINES = 500
MATCHES = 500


class LogPager(widgets.VBox):
    """A page number box and a search box over a ``<pre>`` of numbered lines; hidden until
    shown. With a search, the page shows the matching lines (the first ``MATCHES``)."""

    def __init__(self, **kwargs: object) -> None:
        self.page_number = widgets.BoundedIntText(value=1, min=1, max=1, description="page",
                                                  layout=widgets.Layout(width="11em"))
        self.search = widgets.Text(placeholder="search the log", continuous_update=False,
                                   layout=widgets.Layout(width="18em"))
        self.page_view = widgets.HTML()
        super().__init__([widgets.HBox([self.page_number, self.search]), self.page_view],
                         layout=widgets.Layout(display="none"), **kwargs)
        self.add_class("imagebuild-logpager")

    def hide(self) -> None:
        if self.layout.display != "none":
            self.layout.display = "none"

    def show(self, store: LogStore | None, page: int | None) -> None:
        """Show ``page`` (1-based; None = the last one) of the store's lines."""
        if self.layout.display == "none":
            self.layout.display = None
        total = store.lines if store is not None else 0
        pages = max(1, -(-total // PAGE_LINES))
        number = pages if page is None else min(max(1, page), pages)
        first = (number - 1) * PAGE_LINES
        lines = store.read(first, PAGE_LINES) if store is not None else []
        numbered = list(enumerate(lines, start=first + 1))
        with self.page_number.hold_sync():
            self.page_number.max = pages
            self.page_number.value = number
        head = f"lines {first + 1}-{first + len(lines)} of {total}" if lines else "no log yet"
        query = self.search.value.strip()
        if query and store is not None:
            numbered = store.search(query, MATCHES)
            more = " (the first shown)" if len(numbered) >= MATCHES else ""
            head = f"{len(numbered)} lines with {query!r}{more} of {total}"
            lines = [line for _, line in numbered]
        if store is not None:
            head += f" · file {store.path}"
            if store.dropped:
                head += f" · {store.dropped} lines past the size cap were dropped"
        self.page_view.value = (
            f'<div class="imagebuild-pagehead" style="color: {states.muted()}">{html.escape(head)}</div>'
            '<pre class="imagebuild-page" style="max-height: 30em; overflow: auto; margin: 0; '
            f'font-size: 12px">{html.escape(chr(10).join(_numbered(numbered)))}</pre>')

    def close(self) -> None:
        self.search.close()
        self.page_number.close()
        self.page_view.close()
        super().close()


def _numbered(lines: list[tuple[int, str]]) -> list[str]:
    width = len(str(lines[-1][0])) if lines else 1
    return [f"{number:>{width}} │ {text}" for number, text in lines]
