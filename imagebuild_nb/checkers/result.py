"""The answer to "does this image exist?": exists, missing or unknown, never a bare bool.

``reason`` explains a missing or unknown answer. For unknown it starts with one of the
words in :data:`UNKNOWN_KINDS` ("unreachable: ...", "denied: ...", ...), so callers can branch
on ``result.reason.split(":")[0]`` and users read one sentence.

>>> r = ExistenceResult("localhost:5001/app:1", "missing", None, (), None, "registry", 0.002, None)
>>> r.missing, r.exists, r.unknown
(True, False, False)
>>> r
<ExistenceResult missing localhost:5001/app:1 (registry, 2.0 ms)>
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import Any, Literal

State = Literal["exists", "missing", "unknown"]

UNKNOWN_KINDS = ("unreachable", "denied", "rate limited", "timed out", "daemon down",
                 "registry error", "tls", "credentials", "error")

@dataclass(frozen=True)
class ExistenceResult:
    reference: str
    state: State
    digest: str | None
    platforms: tuple[str, ...]
    reason: str | None
    checker: str
    elapsed: float
    # For an explicit tag checked with a spec hash: does the image's label match? None when no
    # spec hash was asked about or the image is not there.
    spec_hash_matches: bool | None = None
    cached: bool = False

    @property
    def exists(self) -> bool:
        return self.state == "exists"

    @property
    def missing(self) -> bool:
        return self.state == "missing"

    @property
    def unknown(self) -> bool:
        return self.state == "unknown"

    @property
    def built_from_other_spec(self) -> bool:
        """The tag exists but its image was built from a different spec."""
        return self.exists and self.spec_hash_matches is False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["platforms"] = list(self.platforms)
        return data

    def summary(self) -> str:
        """One human sentence, e.g. ``exists (sha256:ab12…) at registry``."""
        text: str = self.state
        if self.digest:
            text += f" ({_short(self.digest)})"
        if self.built_from_other_spec:
            text += " but built from a different spec"
        if self.platforms:
            text += f" [{', '.join(self.platforms)}]"
        if self.reason:
            text += f": {self.reason}"
        return text

    def __repr__(self) -> str:
        parts = [self.state, self.reference]
        if self.digest:
            parts.append(_short(self.digest))
        if self.built_from_other_spec:
            parts.append("built from a different spec")
        if self.platforms:
            parts.append("[" + ", ".join(self.platforms) + "]")
        timing = f"{self.checker}{', cached' if self.cached else ''}, {self.elapsed * 1000:.1f} ms"
        text = f"<ExistenceResult {' '.join(parts)} ({timing})"
        if self.reason:
            text += f" reason={self.reason!r}"
        return text + ">"

    def _repr_html_(self) -> str:
        from imagebuild_nb.progress import html as views  # the colours every view shares

        label = "exists, other spec" if self.built_from_other_spec else self.state
        badge = views.badge(self.state, label)
        muted = views.states.muted()
        rows = [f"<code>{html.escape(self.reference)}</code>"]
        if self.digest:
            rows.append(f'<code title="{html.escape(self.digest)}">'
                        f'{html.escape(_short(self.digest))}</code>')
        if self.platforms:
            rows.append(html.escape(", ".join(self.platforms)))
        details = " &middot; ".join(rows)
        reason = (f'<div style="margin-top:2px;color:{muted}">{html.escape(self.reason)}</div>'
                  if self.reason else "")
        footer = (f'<span style="color:{muted};font-size:0.85em"> {html.escape(self.checker)}'
                  f'{", cached" if self.cached else ""}, {self.elapsed * 1000:.1f} ms</span>')
        return (f'<div class="imagebuild-nb-existence" style="font-family:sans-serif">'
                f"{badge} {details}{footer}{reason}</div>")


def _short(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest
