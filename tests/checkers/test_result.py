"""ExistenceResult: the data, the text and HTML reprs, the dict form; the public surface."""

from __future__ import annotations

import dataclasses

import pytest

import imagebuild_nb
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.checkers.cache import ResultCache
from imagebuild_nb.spec.reference import ImageReference

DIGEST = "sha256:" + "ab" * 32


def result(**changes) -> ExistenceResult:
    base = ExistenceResult("localhost:5001/app:1", "exists", DIGEST, ("linux/amd64",), None,
                           "registry", 0.0042, None)
    return dataclasses.replace(base, **changes)


def test_states_and_frozen():
    assert result().exists and not result().missing and not result().unknown
    assert result(state="unknown").unknown
    with pytest.raises(dataclasses.FrozenInstanceError):
        result().state = "missing"  # type: ignore[misc]


def test_repr_is_one_readable_line():
    text = repr(result())
    assert text == ("<ExistenceResult exists localhost:5001/app:1 sha256:abababababab "
                    "[linux/amd64] (registry, 4.2 ms)>")
    unknown = repr(result(state="unknown", digest=None, platforms=(), reason="unreachable: x"))
    assert "reason='unreachable: x'" in unknown


def test_html_is_self_contained_and_escaped():
    html = result(state="unknown", reason="denied: <script>", reference="r/<x>:1")._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'data-state="unknown"' in html and "--jp-warn-color1" in html and "<link" not in html


def test_to_dict_round_trips_through_json_types():
    data = result(spec_hash_matches=True).to_dict()
    assert data["platforms"] == ["linux/amd64"] and data["spec_hash_matches"] is True
    again = ExistenceResult(**{**data, "platforms": tuple(data["platforms"])})
    assert again == result(spec_hash_matches=True)


def test_cache_keeps_only_definite_answers_and_expires():
    now = [0.0]
    cache = ResultCache(10, clock=lambda: now[0])
    ref = ImageReference.parse("localhost:5001/app:1")
    cache.put(ref, None, None, result(state="unknown"))
    assert cache.get(str(ref), None, None) is None
    cache.put(ref, None, None, result())
    assert cache.get(str(ref), None, None) == result(cached=True)
    assert cache.get(str(ref), "spec", None) is None  # another question
    now[0] = 10.0
    assert cache.get(str(ref), None, None) is None


def test_public_names_are_exported():
    for name in ("ExistenceChecker", "ExistenceResult"):
        assert name in imagebuild_nb.__all__ and hasattr(imagebuild_nb, name)
