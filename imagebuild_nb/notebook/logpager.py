"""The widget's full-log view: page through a :class:`~imagebuild_nb.notebook.logview.LogStore`.

Rendering 100,000 lines would freeze the browser, so the full log is shown a page at a time
(``PAGE_LINES`` lines), read from the file on demand. Only the widget's flusher calls
:meth:`LogPager.show`; the page box's changes come back to the widget as queued requests.

Download: widget HTML runs no scripts and the kernel cannot tell which URL the Jupyter server
serves a file under, so the whole log goes into an ``<a download>`` link as a ``data:`` URL,
built when the pager opens and only for logs up to ``DOWNLOAD_INLINE_BYTES`` (a 64 MiB log
would be an 85 MB comm message and as much browser memory); a bigger log's link is replaced by
its file path and the Python way to read it.

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

import base64
import html
import re

import ipywidgets as widgets

from imagebuild_nb.notebook.logview import LogStore
from imagebuild_nb.progress import states

PAGE_LINES = 500
MATCHES = 500
DOWNLOAD_INLINE_BYTES = 4 * 1024 * 1024


class LogPager(widgets.VBox):
    """A page number box and a search box over a ``<pre>`` of numbered lines; hidden until
    shown. With a search, the page shows the matching lines (the first ``MATCHES``)."""

    def __init__(self, *, inline_limit: int = DOWNLOAD_INLINE_BYTES, **kwargs: object) -> None:
        self.inline_limit = inline_limit
        self._linked: tuple[str, int, str] | None = None  # what the download link holds
        self.page_number = widgets.BoundedIntText(value=1, min=1, max=1, description="page",
                                                  layout=widgets.Layout(width="11em"))
        self.search = widgets.Text(placeholder="search the log", continuous_update=False,
                                   layout=widgets.Layout(width="18em"))
        self.page_view = widgets.HTML()
        # Its own widget: paging and searching do not resend a link of megabytes.
        self.download = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.download.add_class("imagebuild-download")
        super().__init__([widgets.HBox([self.page_number, self.search, self.download],
                                       layout=widgets.Layout(align_items="center")),
                          self.page_view],
                         layout=widgets.Layout(display="none"), **kwargs)
        self.add_class("imagebuild-logpager")

    def hide(self) -> None:
        if self.layout.display != "none":
            self.layout.display = "none"

    def show(self, store: LogStore | None, page: int | None, *, name: str = "build") -> None:
        """Show ``page`` (1-based; None = the last one) of the store's lines; ``name`` names
        the downloaded file."""
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
        self._link(store, name)
        self.page_view.value = (
            f'<div class="imagebuild-pagehead" style="color: {states.muted()}">'
            f'{html.escape(head)}</div>'
            '<pre class="imagebuild-page" style="max-height: 30em; overflow: auto; margin: 0; '
            f'font-size: 12px">{html.escape(chr(10).join(_numbered(numbered)))}</pre>')

    def _link(self, store: LogStore | None, name: str) -> None:
        key = (str(store.path), store.lines, name) if store is not None else None
        if key == self._linked:
            return  # the same log: no new read, no new message
        self._linked = key
        self.download.value = download_link(store, name, self.inline_limit)

    def close(self) -> None:
        self.download.close()
        self.search.close()
        self.page_number.close()
        self.page_view.close()
        super().close()


def _numbered(lines: list[tuple[int, str]]) -> list[str]:
    width = len(str(lines[-1][0])) if lines else 1
    return [f"{number:>{width}} │ {text}" for number, text in lines]


def download_link(store: LogStore | None, name: str, inline_limit: int) -> str:
    """An ``<a download>`` holding the whole log, or where the log is when it is too big.

    >>> from imagebuild_nb.notebook.logview import LogStore
    >>> store = LogStore()
    >>> store.append("hello")
    >>> download_link(store, "demo/app:1", 1000).split(" title=")[0]
    '<a download="demo-app-1.log" href="data:text/plain;charset=utf-8;base64,aGVsbG8K"'
    >>> "too big" in download_link(store, "demo", 2)
    True
    >>> store.close()
    """
    if store is None or store.lines == 0:
        return ""
    store.read(store.lines - 1, 1)  # flushes what is buffered, so the size below is all of it
    size = store.path.stat().st_size if store.path.exists() else 0
    if size > inline_limit:
        return (f'<span class="imagebuild-download-note" style="color: {states.muted()}">'
                f"log of {size / 1048576:.1f} MB, too big to download from the page: "
                f"it is the file {html.escape(str(store.path))} (w.log_path; w.full_log() reads "
                "it)</span>")
    data = base64.b64encode(store.read_text().encode("utf-8")).decode("ascii")
    filename = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "build"
    return (f'<a download="{filename}.log" href="data:text/plain;charset=utf-8;base64,{data}" '
            'title="the whole log as a file" style="color: var(--jp-content-link-color, '
            '#0d47a1); text-decoration: underline">⤓ download log</a>')
