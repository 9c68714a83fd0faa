from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from relaygate.compose import templates
from relaygate.compose.templates import (
    RenderLimits,
    Template,
    TemplateError,
    compile_check,
    render,
    system_catalog,
)


def _html(src: str, variables: dict[str, Any] | None = None, **limits: Any) -> str:
    t = Template(slug="t", subject="s", html=src, text="t")
    kwargs = {"limits": RenderLimits(**limits)} if limits else {}
    return render(t, variables or {}, **kwargs).html


def _refused(src: str, fragment: str, variables: dict[str, Any] | None = None) -> str:
    with pytest.raises(TemplateError) as info:
        _html(src, variables)
    detail = info.value.detail
    assert fragment in detail, detail
    for internal in ("Traceback", "jinja2.", "0x", 'File "'):
        assert internal not in detail
    return detail


# --- SSTI payloads: each refused (or inert) -----------------------------------------------


def test_ssti_class_mro() -> None:
    _refused("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' is not allowed")


def test_ssti_subclasses() -> None:
    _refused("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed")


def test_ssti_cycler_globals() -> None:
    _refused("{{ cycler.__init__.__globals__ }}", "'__init__' is not allowed")


def test_ssti_template_reference_context() -> None:
    _refused("{{ self._TemplateReference__context }}", "not allowed")


def test_ssti_config_and_request_are_just_undefined() -> None:
    _refused("{{ config }}", "undefined variable 'config'")
    _refused("{{ request }}", "undefined variable 'request'")
    _refused("{{ config.items() }}", "undefined variable 'config.items'")


def test_ssti_lipsum_removed() -> None:
    _refused("{{ lipsum.__globals__ }}", "undefined variable")
    _refused("{{ lipsum(10**6) }}", "undefined variable 'lipsum'")


def test_ssti_attr_filter() -> None:
    _refused("{{ ''|attr('__class__') }}", "not allowed")
    _refused("{{ (''|attr('__class__'))|attr('__mro__') }}", "")  # refused either way


def test_ssti_format_string_tricks() -> None:
    _refused("{{ '{0.__class__}'.format(x) }}", "'format' is not allowed", {"x": 1})
    _refused("{{ '{0.__class__}'.format_map(x) }}", "not allowed", {"x": {}})
    # the format filter is printf-style only: no attribute traversal possible
    assert _html("{{ '%s!'|format(x) }}", {"x": "<b>"}) == "&lt;b&gt;!"


def test_ssti_mutation_refused() -> None:
    _refused("{% set x = items.append(1) %}", "not allowed", {"items": []})
    _refused("{{ d.update({'a': 1}) }}", "not allowed", {"d": {}})


def test_ssti_str_methods_outside_allowlist_refused() -> None:
    _refused("{{ 'a'.ljust(10**9) }}", "'ljust' is not allowed")
    _refused("{{ 'a'.encode() }}", "'encode' is not allowed")
    assert _html("{{ 'Hello'.upper() }} {{ 'a,b'.split(',')|join('+') }}") == "HELLO a+b"


def test_no_loader_no_include() -> None:
    _refused('{% include "/etc/passwd" %}', "no loader")
    _refused('{% extends "base.html" %}', "no loader")


# --- bounded work ---------------------------------------------------------------------------


def test_huge_range_refused() -> None:
    _refused("{% for i in range(10**9) %}{% endfor %}", "range() of more than 10000 items")


def test_nested_loops_bounded() -> None:
    _refused(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "more than 100000 loop iterations",
    )


def test_loops_over_data_are_counted_too() -> None:
    big = list(range(5000))
    _refused(
        "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}", "loop iterations", {"xs": big}
    )


def test_string_multiplication_refused() -> None:
    _refused("{{ 'x' * 100000000 }}", "a value larger than 1000000 characters")
    _refused("{{ 'a' * 10**9 }}", "larger than")
    _refused("{{ [1, 2] * 10**9 }}", "larger than")


def test_repeated_doubling_refused() -> None:
    _refused(
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "larger than",
    )
    _refused(
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "larger than",
    )
    _refused(
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s|replace('a', 'aa') %}{% endfor %}",
        "larger than",
    )


def test_nested_list_bomb_refused_before_stringifying() -> None:
    _refused(
        "{% set ns = namespace(l=[1]) %}{% for i in range(80) %}"
        "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
        "larger than",
    )


def test_values_handed_on_by_default_are_still_measured_where_used() -> None:
    bomb = "{% set ns = namespace(l=[1]) %}{% for i in range(80) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
    assert _html(bomb + "{{ ns.l|default(1)|length }}") == "2"
    _refused(bomb + "{{ ns.l|default(1) }}", "larger than")
    _refused(bomb + "{{ ns.l|d(1)|string }}", "larger than")
    _refused(bomb + "{{ x|default(ns.l) ~ '' }}", "larger than")
    _refused(bomb + "{{ (x|default(ns.l))|join(',') }}", "larger than")
    _refused("{{ big|default('') }}", "a value larger than 1000000", {"big": "y" * 1_000_001})
    with pytest.raises(TemplateError, match="function or filter calls"):
        _html(
            "{% for i in range(1000) %}{{ i|default(0) }}{{ [i]|length }}{% endfor %}",
            max_calls=500,
        )


def test_big_numbers_refused() -> None:
    _refused("{{ 2 ** 100000 }}", "4096 bits")
    _refused(
        "{% set ns = namespace(x=3) %}{% for i in range(30) %}{% set ns.x = ns.x * ns.x %}{% endfor %}",
        "4096 bits",
    )


def test_format_widths_refused() -> None:
    _refused("{{ '%1000000000d' % 1 }}", "format width")
    _refused("{{ '%*d' % (10**9, 1) }}", "format width")
    _refused("{{ '%1000000000d'|format(1) }}", "format width")


def test_padding_filters_bounded() -> None:
    _refused("{{ 'x'|center(1000000000) }}", "center() argument larger than 1000")
    _refused("{{ 'x\ny'|indent(10**9) }}", "indent()")
    _refused("{{ [1]|batch(10**9, 'x')|list }}", "batch()")


def test_join_bomb_refused() -> None:
    _refused("{{ ([big] * 1000)|join }}", "larger than", {"big": "y" * 10_000})
    _refused("{{ ''.join([big] * 1000) }}", "larger than", {"big": "y" * 10_000})


def test_sum_only_numbers() -> None:
    assert _html("{{ [1, 2, 3]|sum }}") == "6"
    _refused("{{ [[1]]|sum(start=[]) }}", "numbers only")


def test_output_capped_even_in_captures() -> None:
    _refused(
        "{% set x %}{% for i in range(10000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}ok",
        "output larger than",
    )
    _refused("{% for i in range(10000) %}" + "z" * 200 + "{% endfor %}", "output larger than")


def test_recursion_bounded() -> None:
    _refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep")
    _refused("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}", "")


def test_recursive_loop_counted() -> None:
    tree = {"children": [{"children": []}] * 3}
    out = _html("{% for n in [t] recursive %}[{{ loop(n.children) }}]{% endfor %}", {"t": tree})
    assert out == "[[][][]]"


def test_call_budget_and_deadline() -> None:
    with pytest.raises(TemplateError, match="function or filter calls"):
        _html("{% for i in range(1000) %}{{ i|string|upper }}{% endfor %}", max_calls=500)
    with pytest.raises(TemplateError, match="took longer"):
        _html(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            max_seconds=0.0,
            max_iterations=10**9,
        )


def test_loop_helpers_see_their_own_arguments() -> None:
    # loop.cycle once printed a generator's heap address (its arguments were wrapped for counting)
    out = _html(
        "{% for i in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(i) }} {% endfor %}"
    )
    assert out == "aTrue bFalse aTrue "


def test_recursive_loop_iterations_are_counted() -> None:
    tree = {"children": [{"children": [{"children": []}] * 3}] * 3}  # 1 + 3 + 9 nodes
    src = "{% for n in [t] recursive %}.{{ loop(n.children) }}{% endfor %}"
    assert _html(src, {"t": tree}, max_iterations=13) == "." * 13
    with pytest.raises(TemplateError, match="more than 12 loop iterations"):
        _html(src, {"t": tree}, max_iterations=12)


def test_the_deadline_is_checked_at_every_call() -> None:
    with pytest.raises(TemplateError, match="took longer than 0 s"):
        _html("{{ v|upper }}", {"v": "a"}, max_seconds=0.0)


def test_one_deadline_covers_all_three_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(1000))  # each reading of the clock is one second later
    monkeypatch.setattr(templates.time, "monotonic", lambda: float(next(ticks)))
    t = Template(slug="t", subject="{{ v|upper }}", html="{{ v|upper }}", text="{{ v|upper }}")
    with pytest.raises(TemplateError, match=r"^text on line 1: limit exceeded: rendering took"):
        render(t, {"v": "a"}, limits=RenderLimits(max_seconds=2.5))


@pytest.mark.parametrize("name", ["urlize", "wordwrap"])
def test_the_slow_filters_take_bounded_input(name: str) -> None:
    assert len(_html(f"{{{{ v|{name} }}}}", {"v": "a " * 50_000})) >= 99_000
    _refused(
        f"{{{{ v|{name} }}}}", f"{name}() of more than 100000 characters", {"v": "a " * 50_001}
    )


def test_source_size_limit() -> None:
    with pytest.raises(TemplateError, match="longer than"):
        compile_check(Template(slug="x", subject="s" * 3000, html="", text="t"))


# --- undefined policy, escaping, subject -----------------------------------------------------


def test_undefined_names_the_variable_with_line() -> None:
    detail = _refused(
        "line one\n{{ user.first_name }}", "undefined variable 'user.first_name'", {"user": {}}
    )
    assert "on line 2" in detail
    _refused("{{ nope.a.b }}", "undefined variable 'nope.a.b'")
    _refused("{% for x in missing %}{% endfor %}", "undefined variable 'missing'")


def test_variables_keys_by_dot_and_subscript() -> None:
    v = {"user": {"first_name": "Alex", "path": "/home", "items": 3}}
    assert _html("{{ user.first_name }} {{ user['first_name'] }}", v) == "Alex Alex"
    assert _html("{{ user.path }}", v) == "/home"  # our own attribute never shadows a key
    assert _html("{{ user['items'] }} {{ user.items()|length }}", v) == "3 3"
    _refused("{{ user.path }}", "undefined variable 'user.path'", {"user": {}})
    _refused("{{ user.__class__ }}", "", v)


def test_default_works_at_any_depth_and_if_is_false() -> None:
    assert _html("{{ user.first_name|default('there') }}") == "there"
    assert _html("{{ a.b.c|default('d') }}") == "d"
    assert _html("{% if coupon %}yes{% else %}no{% endif %}") == "no"
    assert _html("{{ 'x' if user.vip is defined else 'y' }}", {"user": {}}) == "y"


def test_html_autoescaped_text_and_subject_not() -> None:
    t = Template(
        slug="t",
        subject="Hi {{ name }}",
        html='<p>{{ name }}</p><a href="{{ url }}">x</a>',
        text="Hi {{ name }}",
    )
    r = render(t, {"name": "<script>alert(1)</script>", "url": '" onmouseover="x'})
    assert "<script>" not in r.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.html
    assert "&#34; onmouseover=&#34;x" in r.html
    assert r.text == "Hi <script>alert(1)</script>"
    assert r.subject == "Hi <script>alert(1)</script>"


def test_subject_is_one_line() -> None:
    t = Template(slug="t", subject="A {{ x }}\n\n  B  ", html="", text="t")
    assert render(t, {"x": "1\r\nBcc: evil@example.com"}).subject == "A 1 Bcc: evil@example.com B"
    with pytest.raises(TemplateError, match="control character"):
        render(t, {"x": "\x07"})


def test_text_derived_from_html_when_blank() -> None:
    t = Template(
        slug="t",
        subject="s",
        html="<h1>Hi</h1><p><a href='https://x.test/a'>Go</a></p>",
        text=" \n",
    )
    assert render(t, {}).text == "Hi\n\nGo (https://x.test/a)\n"


def test_syntax_error_reports_line() -> None:
    with pytest.raises(TemplateError, match=r"html: syntax error on line 3"):
        compile_check(Template(slug="x", subject="s", html="a\nb\n{% if %}", text=""))
    with pytest.raises(TemplateError, match="subject: syntax error on line 1"):
        compile_check(Template(slug="x", subject="{{ a", html="", text=""))


def test_runtime_errors_are_clean() -> None:
    _refused("{{ 1 / 0 }}", "division by zero")
    _refused("{{ 1 + 'a' }}", "invalid operation")


def test_variables_must_be_mapping() -> None:
    with pytest.raises(TemplateError, match="object"):
        render(Template(slug="t", subject="s", html="", text="t"), [])  # type: ignore[arg-type]


# --- the catalog -----------------------------------------------------------------------------


SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {"user": {"first_name": "Alex"}},
    "verify-email": {"action_url": "https://app.test/verify?t=abc", "code": "123456"},
    "password-reset": {"action_url": "https://app.test/reset?t=abc", "user": {"email": "a@x.io"}},
    "receipt": {
        "product_name": "Acme",
        "receipt_number": "1042",
        "items": [
            {"name": "Pro plan", "amount": "49.00"},
            {"name": "Seats", "quantity": 3, "amount": "30.00"},
        ],
        "total": "79.00",
    },
    "notification": {"message": "Your export is ready.", "details": {"File": "export.csv"}},
}


class _Balance(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "input", "link", "col", "area", "base", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()


def test_catalog_has_the_five() -> None:
    assert {"welcome", "verify-email", "password-reset", "receipt", "notification"} <= set(
        system_catalog()
    )


@pytest.mark.parametrize("slug", sorted(SAMPLES))
def test_catalog_renders_and_parses(slug: str) -> None:
    template = system_catalog()[slug]
    compile_check(template)
    r = render(template, SAMPLES[slug])
    assert r.subject and "\n" not in r.subject
    parser = _Balance()
    parser.feed(r.html)
    parser.close()
    assert parser.stack == []
    assert "max-width:600px" in r.html and "<table" in r.html
    assert r.text.strip()
    assert "{{" not in r.html + r.text + r.subject


def test_reference_example_renders_well() -> None:
    r = render(system_catalog()["welcome"], {"user": {"first_name": "Alex"}})
    assert r.subject == "Welcome, Alex!"
    assert "Welcome, Alex!" in r.html and r.text.startswith("Welcome, Alex!")


def test_receipt_lists_items() -> None:
    r = render(system_catalog()["receipt"], SAMPLES["receipt"])
    assert "- Seats x 3: $30.00" in r.text and "Total: $79.00" in r.text
    assert r.html.count("Pro plan") == 1 and "&times; 3" in r.html
    assert r.subject == "Your Acme receipt #1042"


def test_catalog_required_variable_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="undefined variable 'action_url'"):
        render(system_catalog()["verify-email"], {})


def test_catalog_variables_are_escaped() -> None:
    r = render(
        system_catalog()["welcome"], {"user": {"first_name": "<img src=x onerror=alert(1)>"}}
    )
    assert "<img src=x" not in r.html
    assert r.subject == "Welcome, <img src=x onerror=alert(1)>!"
