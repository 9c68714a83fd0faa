"""Message templates: the shipped system catalog and sandboxed, bounded rendering.

Owns :class:`Template` values, loading the system catalog from package data
(``relaygate/compose/catalog/<slug>.subject.txt``, ``<slug>.html``, ``<slug>.txt``), checking an
account's template at creation (:func:`compile_check`) and :func:`render`.

Trusts nothing: template sources are written by customers and variables come from HTTP
clients. Rendering runs in a Jinja2 :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`
hardened further here, and every failure is a :class:`TemplateError` whose ``detail`` names the
problem (syntax error with its line, the undefined variable, the refused operation, the limit
hit) and never carries Python internals.

Rules (decided here, documented for template authors):

* The HTML part is autoescaped; the subject and the text part are not.
* Undefined variables are errors when *output*, *iterated* or *compared*: ``{{ user.name }}``
  with no ``user.name`` is ``TemplateError("undefined variable 'user.name' ...")``, because a
  blank where a name should be is worse in a customer's mailbox than a 400. They are allowed
  where the author said what to do: ``{{ user.name | default("there") }}`` (works at any
  depth: ``a.b.c | default(..)`` when ``a`` is missing), ``{% if user.name is defined %}``,
  and plain truthiness ``{% if coupon %}`` (undefined is false).
* The rendered subject is collapsed to one line (line breaks and surrounding blanks become a
  single space, then stripped); any other control character in it is an error.
* When the rendered text part is blank, it is derived from the rendered HTML
  (:func:`relaygate.compose.htmltext.html_to_text`).
* Only a vetted set of filters, and of methods on strings, lists and dicts, is available;
  ``str.format``/``format_map`` are refused (use the ``format`` filter); ``lipsum`` and
  ``random`` are removed; there is no loader, so ``include``/``extends``/``import`` fail.
* Bounded work (see :class:`RenderLimits`): ``range()`` of at most 10,000 items; 100,000 loop
  iterations and 100,000 function/filter calls per part; every value built by ``*``, ``**``,
  ``+``, ``~``, ``%``, ``replace``, ``join``, ``center``... is checked (most *before* it is built)
  against 1,000,000 characters; all output, including captured ``{% set %}`` blocks and macro
  bodies, counts against 1,000,000 characters per part; ``urlize`` and ``wordwrap`` (the slow
  ones: ~1.4 s and ~0.3 s per million characters) take at most 100,000; a 2-second wall-clock
  deadline per render (all three parts), checked at every call, filter and loop iteration;
  template sources at most 256 KiB (subject 2 KiB); Python recursion errors become "template
  recursion too deep"; variables nested deeper than Python can walk are refused.

A single call can still outrun the deadline check (it is checked between calls): servers render
through :mod:`relaygate.compose.renderer`, which runs this module in a worker process and kills
it at the deadline.
"""

from __future__ import annotations

import functools
import re
import time
import types
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import jinja2.nodes
from jinja2 import ChainableUndefined, StrictUndefined, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg
from markupsafe import escape

from relaygate.compose.htmltext import html_to_text
from relaygate.errors import PermanentError
from relaygate.store.models import Template  # the store keeps account templates as these

__all__ = [
    "DEFAULT_LIMITS",
    "RenderLimits",
    "Rendered",
    "Template",
    "TemplateError",
    "compile_check",
    "render",
    "system_catalog",
]


class TemplateError(PermanentError, ValueError):
    """A template cannot be compiled or rendered. ``detail`` is safe to show to the client."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """The rendered parts: a one-line subject, the HTML and the plain text."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True, kw_only=True)
class RenderLimits:
    """Work bounds for rendering one part (subject, html or text)."""

    max_source_chars: int = 256 * 1024
    max_subject_source_chars: int = 2048
    max_output_chars: int = 1_000_000
    max_value_chars: int = 1_000_000
    max_range: int = 10_000
    max_iterations: int = 100_000
    max_calls: int = 100_000
    max_seconds: float = 2.0
    max_slow_filter_chars: int = 100_000


DEFAULT_LIMITS = RenderLimits()


class _LimitExceeded(Exception):
    """Internal: a render limit was hit (becomes TemplateError)."""


# ---------------------------------------------------------------------------------------------
# Per-render budget


class _Budget:
    __slots__ = ("calls", "deadline", "iterations", "limits", "output")

    def __init__(self, limits: RenderLimits, deadline: float | None = None) -> None:
        self.limits = limits
        self.iterations = 0
        self.calls = 0
        self.output = 0
        self.deadline = time.monotonic() + limits.max_seconds if deadline is None else deadline

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _LimitExceeded(f"rendering took longer than {self.limits.max_seconds:g} s")

    def tick_iteration(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise _LimitExceeded(f"more than {self.limits.max_iterations} loop iterations")
        self.check_time()

    def tick_call(self) -> None:
        self.calls += 1
        if self.calls > self.limits.max_calls:
            raise _LimitExceeded(f"more than {self.limits.max_calls} function or filter calls")
        self.check_time()

    def emit(self, size: int) -> None:
        self.output += size
        if self.output > self.limits.max_output_chars:
            raise _LimitExceeded(f"output larger than {self.limits.max_output_chars} characters")

    def check_size(self, size: int) -> None:
        if size > self.limits.max_value_chars:
            raise _LimitExceeded(f"a value larger than {self.limits.max_value_chars} characters")


_BUDGET: ContextVar[_Budget | None] = ContextVar("relaygate_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # only reachable when a compiled template is used outside render()
        budget = _Budget(DEFAULT_LIMITS)
        _BUDGET.set(budget)
    return budget


_SIZED_TYPES = (str, list, tuple, dict, set, frozenset, Namespace)


def _weight(value: Any, cap: int, memo: dict[int, int] | None = None) -> int:
    """Roughly how many characters ``str(value)`` would be; stops counting past ``cap``.

    Shared sub-structures are walked once (memo), so a chain of ``[x, x]`` nestings that
    doubles the text at each level is measured in linear time.
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 8
    if memo is None:
        memo = {}
    key = id(value)
    if key in memo:
        return memo[key]
    memo[key] = cap + 1  # a value that contains itself is too big
    total = 2
    items: Iterable[Any] = value.items() if isinstance(value, dict) else value
    for item in items:
        total += _weight(item, cap, memo) + 2
        if total > cap:
            break
    memo[key] = total
    return total


def _presized(*values: Any) -> None:
    """Refuse, before anything turns them into text, values over the value-size limit."""
    budget = _budget()
    cap = budget.limits.max_value_chars
    total = 0
    memo: dict[int, int] = {}
    for value in values:
        if isinstance(value, _SIZED_TYPES):
            total += _weight(value, cap, memo)
            budget.check_size(total)


def _sized(value: Any) -> Any:
    """``value`` if within the value-size limit (a post-check for linear-growth operations)."""
    if isinstance(value, _SIZED_TYPES):
        _presized(value)
    return value


# ---------------------------------------------------------------------------------------------
# Undefined values and variables


class _Undefined(ChainableUndefined, StrictUndefined):
    """Strict when printed, iterated or compared; chainable (``a.b.c | default``); falsy."""

    __slots__ = ()

    def __bool__(self) -> bool:  # type: ignore[override]
        return False

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._chained(name)

    def __getitem__(self, name: Any) -> Any:
        return self._chained(name)

    def _chained(self, name: Any) -> _Undefined:
        if self._undefined_exception is not UndefinedError or self._undefined_hint:
            return self
        return _Undefined(name=f"{self._path()}.{name}")

    def _path(self) -> str:
        obj = self._undefined_obj
        name = self._undefined_name
        if isinstance(obj, _Vars) and obj.path:
            return f"{obj.path}.{name}"
        return str(name)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        return f"undefined variable {self._path()!r}"


class _Vars(dict[str, Any]):
    """An object from the request's ``variables`` that knows its dotted path (for messages)."""

    __slots__ = ("path",)

    def __init__(self, items: Iterable[tuple[str, Any]], path: str) -> None:
        super().__init__(items)
        self.path = path


_VARS_ATTRIBUTES = frozenset(dir(dict))  # not "path": that is ours, the key wins


def _wrap(value: Any, path: str) -> Any:
    if isinstance(value, Mapping):
        return _Vars(((str(k), _wrap(v, f"{path}.{k}")) for k, v in value.items()), path)
    if isinstance(value, list | tuple):
        return [_wrap(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------------------------------------
# Guarded operations


_PRINTF_WIDTH_RE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_WIDTH_RE.finditer(fmt):
        for group in match.groups():
            if group == "*" or (group is not None and int(group) > 1000):
                raise _LimitExceeded("a format width or precision larger than 1000")


def _mul(left: Any, right: Any) -> Any:
    budget = _budget()
    cap = budget.limits.max_value_chars
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            budget.check_size(_weight(seq, cap) * max(count, 0))
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and abs(left).bit_length() + abs(right).bit_length() > 4096
    ):
        raise _LimitExceeded("a number larger than 4096 bits")
    return left * right


def _pow(left: Any, right: Any) -> Any:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and right > 0
        and abs(left) > 1
        and abs(left).bit_length() * right > 4096
    ):
        raise _LimitExceeded("a number larger than 4096 bits")
    return left**right


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _check_printf(left)
        _presized(right)
    return _sized(left % right)


def _add(left: Any, right: Any) -> Any:
    return _sized(left + right)


def _check_replace(s: str, old: str, new: str, count: int = -1) -> None:
    occurrences = len(s) + 1 if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    _budget().check_size(len(s) + occurrences * max(len(new) - len(old), 0))


def _check_join(sep: str, items: list[Any]) -> None:
    budget = _budget()
    cap = budget.limits.max_value_chars
    total = len(sep) * max(len(items) - 1, 0)
    budget.check_size(total)
    memo: dict[int, int] = {}
    for item in items:
        total += _weight(item, cap, memo)
        budget.check_size(total)


# Methods callable on builtin data types. Everything else (format, format_map, center, ljust,
# zfill, expandtabs, encode, translate, mutators...) is refused by is_safe_attribute.
_STR_METHODS = frozenset(
    [
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join",
        "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind",
        "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
        "strip", "swapcase", "title", "upper",
    ]
)  # fmt: skip
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQ_METHODS = frozenset({"count", "index"})


def _safe_range(*args: int) -> range:
    rng = range(*args)
    limit = _budget().limits.max_range
    if len(rng) > limit:
        raise _LimitExceeded(f"range() of more than {limit} items")
    return rng


def _counted(iterable: Any) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.tick_iteration()
        yield item


def _out(value: Any, autoescape: bool) -> str:
    budget = _budget()
    if isinstance(value, str):  # the common case: no walk, and str() of a str builds nothing
        budget.check_size(len(value))
    else:
        _presized(value)
    out = escape(value) if autoescape else str(value)
    budget.emit(len(out))
    return out


def _out_escape(value: Any) -> str:
    return _out(value, True)


def _out_str(value: Any) -> str:
    return _out(value, False)


def _emit_const(value: str) -> str:
    _budget().emit(len(value))
    return value


def _concat(autoescape: bool, items: tuple[Any, ...]) -> str:
    _presized(*items)
    return str(markup_join(items) if autoescape else str_join(items))


class _Generator(CodeGenerator):
    """Jinja's code generator, with every output measured before it becomes text (``{% set %}`` captures and macro bodies included)."""

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.rg_emit_const({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: jinja2.nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile:
            self.write(
                "(environment.rg_out_escape if context.eval_ctx.autoescape"
                " else environment.rg_out_str)("
            )
        elif frame.eval_ctx.autoescape:
            self.write("environment.rg_out_escape(")
        else:
            self.write("environment.rg_out_str(")
        if finalize.src is not None:
            self.write(finalize.src)

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            self.write("environment.rg_concat(context.eval_ctx.autoescape, (")
        else:
            self.write(f"environment.rg_concat({bool(frame.eval_ctx.autoescape)}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, narrowed (globals, filters, methods) and bounded."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Generator
    rg_out_escape = staticmethod(_out_escape)
    rg_out_str = staticmethod(_out_str)
    rg_emit_const = staticmethod(_emit_const)
    rg_concat = staticmethod(_concat)

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=_Undefined,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
        )
        self.binop_table = {**self.binop_table, "*": _mul, "**": _pow, "%": _mod, "+": _add}
        self.globals = {
            "range": _safe_range,
            "dict": dict,
            "cycler": self.globals["cycler"],
            "joiner": self.globals["joiner"],
            "namespace": self.globals["namespace"],
        }
        self.filters = _filters(self.filters)

    def _parse(self, source: str, name: str | None, filename: str | None) -> jinja2.nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all(jinja2.nodes.For):  # every loop iteration is counted
            node.iter = jinja2.nodes.Filter(
                node.iter, "_rg_loop", [], [], None, None, lineno=node.lineno
            )
        return tree

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``user.name`` on the request's variables: the key, as Jinja's getattr would find it
        # after failing to find an attribute (names of dict attributes take the general path).
        if type(obj) is _Vars and attribute not in _VARS_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(value, types.BuiltinMethodType | types.MethodType | types.MethodWrapperType):
            if isinstance(obj, str):
                return attr in _STR_METHODS
            if isinstance(obj, dict):
                return attr in _DICT_METHODS
            if isinstance(obj, list | tuple):
                return attr in _SEQ_METHODS
            if isinstance(obj, int | float | bytes | set | frozenset):
                return False
        return True

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format / format_map are refused outright (see is_safe_attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget().tick_call()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "replace" and len(args) >= 2:
                _presized(*args)
                _check_replace(owner, str(args[0]), str(args[1]), *args[2:3])
            elif name == "join" and args:
                items = list(args[0])
                _check_join(owner, items)
                args = (items, *args[1:])
        elif isinstance(__obj, LoopContext) and args:  # ``loop(children)`` in a recursive loop
            args = (_counted(args[0]), *args[1:])
        return _sized(super().call(__context, __obj, *args, **kwargs))


# ---------------------------------------------------------------------------------------------
# Filters


def _shaping_check(name: str) -> Callable[[tuple[Any, ...], Mapping[str, Any]], None]:
    """center/indent/wordwrap/batch/slice: the numbers and strings they repeat stay small."""

    def check(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        for arg in (*args[1:], *kwargs.values()):
            if isinstance(arg, int) and arg > 1000:
                raise _LimitExceeded(f"{name}() argument larger than 1000")
            if isinstance(arg, str) and len(arg) > 1000:
                raise _LimitExceeded(f"{name}() string argument longer than 1000 characters")

    return check


def _sum_check(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    start = kwargs.get("start", args[2] if len(args) > 2 else 0)
    if not isinstance(start, int | float):
        raise _LimitExceeded("sum() adds numbers only")


def _replace_check(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    # do_replace(eval_ctx, s, old, new, count=None); ``args`` excludes eval_ctx
    if len(args) >= 3:
        count = args[3] if len(args) > 3 else kwargs.get("count")
        _check_replace(str(args[0]), str(args[1]), str(args[2]), -1 if count is None else count)


def _slow_check(
    name: str, then: Callable[[tuple[Any, ...], Mapping[str, Any]], None] | None = None
) -> Callable[[tuple[Any, ...], Mapping[str, Any]], None]:
    """urlize/wordwrap: their input is bounded (their cost per character is high)."""

    def check(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        cap = _budget().limits.max_slow_filter_chars
        if args and _weight(args[0], cap) > cap:
            raise _LimitExceeded(f"{name}() of more than {cap} characters")
        if then is not None:
            then(args, kwargs)

    return check


_FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], Mapping[str, Any]], None]] = {
    **{name: _shaping_check(name) for name in ("center", "indent", "batch", "slice")},
    "wordwrap": _slow_check("wordwrap", _shaping_check("wordwrap")),
    "urlize": _slow_check("urlize"),
    "sum": _sum_check,
    "replace": _replace_check,
}
_ALLOWED_FILTERS = [
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "first", "float", "forceescape", "groupby", "indent", "int", "items", "last",
    "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
    "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string",
    "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode",
    "urlize", "wordcount", "wordwrap", "xmlattr",
]  # fmt: skip


# Filters whose result is one of their arguments (default) or a number (length): nothing is built
# or stringified, so their arguments and result need no measuring here.
_SELECTOR_FILTERS = frozenset({"d", "default", "count", "length"})


def _is_jinja_state(value: Any) -> bool:
    return isinstance(value, EvalContext | jinja2.runtime.Context | jinja2.Environment)


def _wrap_filter(
    func: Callable[..., Any],
    check: Callable[[tuple[Any, ...], Mapping[str, Any]], None] | None,
) -> Callable[..., Any]:
    if _PassArg.from_obj(func) is not None:  # its first argument is Jinja's state, not a value

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            _budget().tick_call()
            visible = tuple(a for a in args if not _is_jinja_state(a))
            _presized(*visible, *kwargs.values())
            if check is not None:
                check(visible, kwargs)
            return _sized(func(*args, **kwargs))

        return guarded

    @functools.wraps(func)
    def guarded_plain(*args: Any, **kwargs: Any) -> Any:
        _budget().tick_call()
        _presized(*args, *kwargs.values())
        if check is not None:
            check(args, kwargs)
        return _sized(func(*args, **kwargs))

    return guarded_plain


def _wrap_selector(func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that returns one of its arguments or a number, turning nothing into text: its
    call is counted, and the values it hands on are measured where they are used."""

    @functools.wraps(func)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _budget().tick_call()
        return func(*args, **kwargs)

    return counted


@pass_eval_context
def _join_filter(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None
) -> str:
    _budget().tick_call()
    items = list(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    _check_join(str(d), items)
    if eval_ctx.autoescape:
        return str(markup_join(_interleave(items, d)))
    return str(d).join(map(str, items))


def _interleave(items: list[Any], sep: Any) -> Iterator[Any]:
    for i, item in enumerate(items):
        if i:
            yield sep
        yield item


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    """printf-style ``"%s and %d" | format(a, b)`` with bounded widths (replaces Jinja's)."""
    _budget().tick_call()
    fmt = str(value)
    _check_printf(fmt)
    _presized(*args, *kwargs.values())
    if args and kwargs:
        raise _LimitExceeded("format() takes positional or keyword arguments, not both")
    result: str = _sized(fmt % (kwargs or args))
    return result


def _filters(builtin: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    out = {
        name: _wrap_selector(builtin[name])
        if name in _SELECTOR_FILTERS
        else _wrap_filter(builtin[name], _FILTER_CHECKS.get(name))
        for name in _ALLOWED_FILTERS
    }
    out["format"] = _format_filter
    out["join"] = _join_filter
    out["_rg_loop"] = _counted
    return out


# ---------------------------------------------------------------------------------------------
# Compiling and rendering


_HTML_ENV = _Sandbox(autoescape=True)
_TEXT_ENV = _Sandbox(autoescape=False)


def _friendly(exc: BaseException) -> str:
    if isinstance(exc, _LimitExceeded):
        return f"limit exceeded: {exc}"
    if isinstance(exc, SecurityError):
        msg = str(exc)
        match = re.search(r"attribute ('[^']*')", msg)
        if match:
            return f"unsafe operation refused: access to attribute {match.group(1)} is not allowed"
        return "unsafe operation refused: this call is not allowed"
    if isinstance(exc, UndefinedError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "template recursion too deep"
    if isinstance(exc, MemoryError):
        return "limit exceeded: out of memory"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, TypeError | ValueError | ArithmeticError | LookupError):
        text = str(exc).split("\n", 1)[0]
        text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>", "<object>", text)
        return f"invalid operation: {text[:200]}"
    if isinstance(exc, jinja2.TemplateError):
        return str(exc).split("\n", 1)[0][:200]
    return f"rendering failed ({type(exc).__name__})"


def _lineno(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@functools.lru_cache(maxsize=512)
def _compile(source: str, html: bool, part: str) -> jinja2.Template:
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        compiled = env.from_string(source)
        # The environment's globals as a plain dict, not a ChainMap (iterated on every render).
        compiled.globals = dict(compiled.globals)
        return compiled
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{part}: syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateError(f"{part}: template too deeply nested") from None
    except Exception as exc:
        raise TemplateError(f"{part}: {_friendly(exc)}") from None


def _check_sources(template: Template, limits: RenderLimits) -> None:
    for part, source, limit in (
        ("subject", template.subject, limits.max_subject_source_chars),
        ("html", template.html, limits.max_source_chars),
        ("text", template.text, limits.max_source_chars),
    ):
        if not isinstance(source, str):
            raise TemplateError(f"{part}: template source must be a string")
        if len(source) > limit:
            raise TemplateError(f"{part}: template source longer than {limit} characters")


def compile_check(template: Template, *, limits: RenderLimits = DEFAULT_LIMITS) -> None:
    """Validate a template's sources (syntax, size) without variables. Raises TemplateError."""
    _check_sources(template, limits)
    _compile(template.subject, False, "subject")
    _compile(template.html, True, "html")
    _compile(template.text, False, "text")


def _render_part(
    source: str,
    html: bool,
    part: str,
    context: Mapping[str, Any],
    limits: RenderLimits,
    deadline: float,
) -> str:
    compiled = _compile(source, html, part)
    token = _BUDGET.set(_Budget(limits, deadline))
    try:
        return compiled.render(context)
    except TemplateError:
        raise
    except Exception as exc:
        line = _lineno(exc)
        where = f" on line {line}" if line is not None else ""
        raise TemplateError(f"{part}{where}: {_friendly(exc)}") from None
    finally:
        _BUDGET.reset(token)


_SUBJECT_BREAKS_RE = re.compile(r"[ \t]*[\r\n\u2028\u2029\x0b\x0c\x85]+[ \t]*")


def _one_line_subject(subject: str) -> str:
    subject = _SUBJECT_BREAKS_RE.sub(" ", subject).strip(" \t")
    if subject.isprintable():  # no control or surrogate character: nothing to refuse
        return subject
    for ch in subject:
        if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            raise TemplateError(f"subject: contains the control character U+{ord(ch):04X}")
    return subject


def render(
    template: Template,
    variables: Mapping[str, Any],
    *,
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Rendered:
    """Render all three parts with ``variables`` (JSON-like data). Raises TemplateError."""
    if not isinstance(variables, Mapping):
        raise TemplateError("variables must be an object")
    _check_sources(template, limits)
    deadline = time.monotonic() + limits.max_seconds
    try:
        context = {str(k): _wrap(v, str(k)) for k, v in variables.items()}
    except RecursionError:
        raise TemplateError("variables are nested too deeply") from None
    subject = _one_line_subject(
        _render_part(template.subject, False, "subject", context, limits, deadline)
    )
    html = (
        _render_part(template.html, True, "html", context, limits, deadline)
        if template.html
        else ""
    )
    text = (
        _render_part(template.text, False, "text", context, limits, deadline)
        if template.text
        else ""
    )
    if not text.strip() and html.strip():
        text = html_to_text(html)
    return Rendered(subject=subject, html=html, text=text)


# ---------------------------------------------------------------------------------------------
# The system catalog


@functools.cache
def _load_catalog() -> types.MappingProxyType[str, Template]:
    root = resources.files("relaygate.compose").joinpath("catalog")
    parts: dict[str, dict[str, str]] = {}
    for entry in root.iterdir():
        name = entry.name
        if name.endswith(".subject.txt"):
            slug, kind = name[: -len(".subject.txt")], "subject"
        elif name.endswith(".html"):
            slug, kind = name[: -len(".html")], "html"
        elif name.endswith(".txt"):
            slug, kind = name[: -len(".txt")], "text"
        else:
            continue
        parts.setdefault(slug, {})[kind] = entry.read_text(encoding="utf-8")
    catalog = {
        slug: Template(
            slug=slug,
            subject=p.get("subject", "").strip(),
            html=p.get("html", ""),
            text=p.get("text", ""),
        )
        for slug, p in sorted(parts.items())
    }
    return types.MappingProxyType(catalog)


def system_catalog() -> Mapping[str, Template]:
    """The shipped templates by slug (read once from package data, then cached)."""
    return _load_catalog()
