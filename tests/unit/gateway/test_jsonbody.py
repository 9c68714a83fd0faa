"""gateway.jsonbody: lone surrogates and deep nesting anywhere in a body are a 400 naming the
field; everything else (any valid Unicode, any shape up to the depth) passes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaygate.errors import RequestError
from relaygate.gateway.jsonbody import MAX_DEPTH, check_body

valid_text = st.text(max_size=20)  # hypothesis leaves surrogates out of text by default
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | valid_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(valid_text, children, max_size=4)
    ),
    max_leaves=20,
)
surrogates = st.integers(0xD800, 0xDFFF).map(chr)


def _refused(body: Any) -> str:
    with pytest.raises(RequestError) as info:
        check_body(body)
    assert info.value.status == 400
    detail = info.value.detail
    detail.encode("utf-8")  # the answer itself can always be written
    return detail


@given(json_values)
def test_valid_bodies_pass(body: Any) -> None:
    check_body(json.loads(json.dumps(body)))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"text": "a\ud800b"}, "text: contains a lone surrogate (U+D800) at character 1"),
        ({"html": "<p>\udfff"}, "html: contains a lone surrogate (U+DFFF) at character 3"),
        ({"tags": ["ok", "x\udc00"]}, "tags[1]: contains a lone surrogate (U+DC00)"),
        ({"variables": {"user": {"name": "\ud83d"}}}, "variables.user.name: contains"),
        ({"template": "we\ud800"}, "template: contains a lone surrogate"),
        ({"variables": {"k\ud800": 1}}, "variables: the key 'k\\ud800' contains a lone surrogate"),
        ({"variables": {"k\ud800": {"x": "\ud800"}}}, "lone surrogate"),
        ({"\ud800": 1}, "request body: the key '\\ud800' contains"),
    ],
)
def test_a_lone_surrogate_is_named_by_its_field(body: dict[str, Any], where: str) -> None:
    assert where in _refused(json.loads(json.dumps(body)))


def test_a_surrogate_pair_is_one_valid_character() -> None:
    body = json.loads('{"text": "smile \\ud83d\\ude00", "variables": {"e": "\\ud83d\\ude00"}}')
    check_body(body)
    assert body["text"] == "smile \U0001f600"


@given(
    body=json_values.filter(lambda v: isinstance(v, dict | list) and v),
    data=st.data(),
    bad=surrogates,
)
def test_a_lone_surrogate_anywhere_is_refused_with_its_path(
    body: Any, data: st.DataObject, bad: str
) -> None:
    # walk down to a random place and put a lone surrogate there (a value, or a key)
    node, path = body, ""
    while True:
        if isinstance(node, list) and node:
            i = data.draw(st.integers(0, len(node) - 1))
            if not isinstance(node[i], dict | list) or not node[i] or data.draw(st.booleans()):
                node[i] = f"x{bad}"
                path += f"[{i}]"
                break
            node, path = node[i], f"{path}[{i}]"
        elif isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if data.draw(st.booleans()):
                node[f"{key}{bad}"] = node.pop(key)
                path = path or "request body"
                break
            if not isinstance(node[key], dict | list) or not node[key]:
                node[key] = f"x{bad}"
                path += f".{key}" if path else key
                break
            node, path = node[key], f"{path}.{key}" if path else key
        else:
            raise AssertionError("unreachable: only non-empty containers are entered")
    detail = _refused(json.loads(json.dumps(body)))
    assert detail.startswith(f"{path or 'request body'}: ") and "lone surrogate" in detail, (
        path,
        detail,
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 5000])
def test_deep_nesting_is_refused_naming_where(depth: int) -> None:
    nested: Any = "x"
    for _ in range(depth - 1):
        nested = [nested]
    detail = _refused({"variables": {"d": nested}})
    assert (
        detail.startswith("variables.d") and f"nested more than {MAX_DEPTH} levels deep" in detail
    )


def test_nesting_up_to_the_limit_passes() -> None:
    nested: Any = {}
    for _ in range(MAX_DEPTH - 1):
        nested = {"a": nested}
    check_body({"variables": nested})  # the body is level 0, variables level 1
