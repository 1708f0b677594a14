"""The Jinja2 sandbox campaign templates run in, and its limits (DESIGN §2, invariant 6).

`SandboxedEnvironment` already refuses private attributes (`__class__`, ...) and
ranges over 100,000 items. Campaign templates are written by users of a shared
sender, so this adds what keeps one template from stalling or exhausting it:

- time: every loop iteration and every call checks a per-message deadline (1 s);
- size: the output, every string and every list a template builds is held under
  2,000,000 characters ("weight"), checked before an operation that multiplies size
  (`*`, `**`, `%` and `format` widths, `replace`, `join`, width filters) and after the
  rest, so nothing can grow far past the limit before it is refused;
- immutability: `ImmutableSandboxedEnvironment`, and data comes as `Record`s, so a
  template cannot change the data it is given;
- `StrictUndefined` with messages that name the variable ("undefined variable
  'recipient.citty'").

A single built-in operation on bounded values (say, comparing two long lists) is not
interrupted; bounded values keep it short.
"""

from __future__ import annotations

import functools
import math
import re
import string
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from itertools import islice
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, missing
from jinja2.visitor import NodeTransformer

MAX_RENDER_SECONDS = 1.0
MAX_OUTPUT = 2_000_000  # characters of output, and the weight of any value a template builds
MAX_RANGE = 100_000
MAX_WIDTH = 100_000  # a number that sizes a string: a width, a count, a padding
MAX_INT_BITS = 64_000
RENDER_BATCH = 32

# Filter names the guards below compile into templates (see _Guards).
GUARD_ITER = "pigeon_loop_guard"
GUARD_SIZE = "pigeon_size_guard"

_deadline: ContextVar[float] = ContextVar("pigeon_render_deadline", default=math.inf)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_WIDTH_FILTERS = frozenset(
    {"center", "indent", "wordwrap", "truncate", "batch", "slice", "tojson", "format"}
)
_REFUSED_METHODS = frozenset({"maketrans", "translate"})


class Record:
    """Read-only data a template reads by name: `x.name`, `x['name']`, `name in x`.

    Not a dict, so a data field called `items` or `keys` is that field, not a method;
    a record has no method a template could call. Nested dicts read as records too.
    `_path` ("recipient") makes undefined names read "recipient.citty"; `_text` is
    what `{{ x }}` prints. The sandbox reads records without its generic checks.
    """

    __slots__ = ("_fields", "_path", "_text")

    def __init__(self, fields: dict[str, Any], path: str, text: str | None = None) -> None:
        self._fields = fields
        self._path = path
        self._text = text

    def __getitem__(self, key: str) -> Any:
        value = self._fields[key]
        if type(value) is dict:
            return Record(value, f"{self._path}.{key}")
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __str__(self) -> str:
        return self._text if self._text is not None else str(self._fields)


class TemplateLimitError(SecurityError):
    """Raised when a template exceeds a limit of the sandbox (time, size, numbers)."""


class PigeonUndefined(StrictUndefined):
    """StrictUndefined whose message names the variable as the author wrote it."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        obj = self._undefined_obj
        if obj is missing:
            return f"undefined variable {name!r}"
        path = getattr(obj, "_path", None)
        if isinstance(path, str):
            return f"undefined variable '{path}.{name}'"
        return f"undefined attribute {name!r} of a {type(obj).__name__} value"


def deadline_after(seconds: float = MAX_RENDER_SECONDS) -> float:
    """The monotonic instant a render starting now must finish by."""
    return time.monotonic() + seconds


def check_deadline() -> None:
    """Refuse to go on once the current render's deadline has passed."""
    if time.monotonic() > _deadline.get():
        raise TemplateLimitError(f"template ran longer than {MAX_RENDER_SECONDS:g} s")


def weight(value: Any, budget: int = MAX_OUTPUT) -> int:
    """Roughly how many characters `value` prints as; counting stops past `budget`.

    Shared references count every time, so a structure that nests the same list many
    times weighs what printing it would cost.
    """
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 1
    total = 0
    stack: list[Any] = [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 2
    return total


def check_weight(value: Any) -> Any:
    """`value`, unless it is larger than any template may build."""
    if weight(value) > MAX_OUTPUT:
        raise TemplateLimitError(f"value larger than {MAX_OUTPUT} characters")
    return value


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
        raise TemplateLimitError(f"number too large ({value} > {MAX_WIDTH})")


def _check_numbers(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        _check_number(value)


def _check_percent_format(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for width in match.groups():
            if width == "*":
                raise TemplateLimitError("'*' widths are not allowed in templates")
            if width is not None:
                _check_number(int(width))


def _check_str_format(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # the call itself reports the malformed format
    for _literal, _field, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("nested format specifications are not allowed in templates")
        for digits in _DIGITS.findall(spec):
            _check_number(int(digits))


def _check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old, new = str(text), str(old), str(new)
    hits = (len(text) + 1) if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(0, len(new) - len(old)) > MAX_OUTPUT:
        raise TemplateLimitError(f"replace would build more than {MAX_OUTPUT} characters")


def _check_join(items: list[Any], separator: Any) -> None:
    total = len(str(separator)) * len(items)
    for item in items:
        total += weight(item)
        if total > MAX_OUTPUT:
            raise TemplateLimitError(f"join would build more than {MAX_OUTPUT} characters")


def guarded_range(*args: int) -> range:
    """`range` for templates: at most MAX_RANGE items."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimitError(f"range too large (more than {MAX_RANGE} items)")
    return rng


# What every template sees besides its context (no `lipsum`: it makes text of any size).
GLOBALS: dict[str, Any] = {
    "range": guarded_range,
    "dict": dict,
    "cycler": Cycler,
    "joiner": Joiner,
    "namespace": Namespace,
}


def _loop_guard(value: Any) -> Iterator[Any]:
    """Wraps every `{% for %}` iterable so each iteration checks the deadline."""
    deadline = _deadline.get()
    for item in value:
        if time.monotonic() > deadline:
            raise TemplateLimitError(f"template ran longer than {MAX_RENDER_SECONDS:g} s")
        yield item


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter with the checks its kind needs (see module docstring)."""
    if name == "replace":

        def checked(*args: Any, **kwargs: Any) -> Any:
            # (eval_ctx, s, old, new, count=None)
            count = kwargs.get("count", args[4] if len(args) > 4 else None)
            _check_replace(args[1], args[2], args[3], count)
            return check_weight(func(*args, **kwargs))

    elif name == "join":

        def checked(*args: Any, **kwargs: Any) -> Any:
            # (eval_ctx, value, d="", attribute=None)
            items = list(args[1])
            separator = kwargs.get("d", args[2] if len(args) > 2 else "")
            _check_join(items, separator)
            return check_weight(func(args[0], items, *args[2:], **kwargs))

    else:
        width_checked = name in _WIDTH_FILTERS

        def checked(*args: Any, **kwargs: Any) -> Any:
            if width_checked:
                _check_numbers(args[1:], kwargs)
                if name == "format" and isinstance(args[0], str):
                    _check_percent_format(args[0])
            return check_weight(func(*args, **kwargs))

    return functools.wraps(func)(checked)


class _Guards(NodeTransformer):
    """Compiles the time and size checks into a template's syntax tree."""

    def _wrap(self, node: nodes.Node, name: str) -> nodes.Filter:
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap(node.iter, GUARD_ITER)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, GUARD_SIZE)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, GUARD_SIZE)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, GUARD_SIZE)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, GUARD_SIZE) if node.ctx == "load" else node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        guard = nodes.Filter(node.filter, GUARD_SIZE, [], [], None, None, lineno=node.lineno)
        node.filter = guard
        return node


class CampaignSandbox(ImmutableSandboxedEnvironment):
    """The environment every campaign template is compiled in (see module docstring)."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(
        self,
        *,
        autoescape: bool,
        finalize: Callable[[Any], Any] | None = None,
        delimiters: Mapping[str, str] | None = None,
        filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=PigeonUndefined,
            finalize=finalize,
            keep_trailing_newline=True,
            auto_reload=False,
            **(delimiters or {}),
        )
        self.globals = dict(GLOBALS)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters[GUARD_ITER] = _loop_guard
        self.filters[GUARD_SIZE] = check_weight
        self.filters.update(filters or {})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        guarded = _Guards().visit(tree)
        assert isinstance(guarded, nodes.Template)
        return guarded

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Record:
            value = obj._fields.get(attribute, missing)
            if value is missing:
                return self.undefined(obj=obj, name=attribute)
            if type(value) is dict:
                return Record(value, f"{obj._path}.{attribute}")
            return value
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        both_ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**":
            if both_ints and right > 0 and max(1, abs(left).bit_length()) * right > MAX_INT_BITS:
                raise TemplateLimitError("number too large")
            return left**right
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeats = isinstance(times, int) and not isinstance(seq, int | float)
                if repeats and times > 0 and weight(seq) * times > MAX_OUTPUT:
                    raise TemplateLimitError(f"value larger than {MAX_OUTPUT} characters")
            if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimitError("number too large")
            return left * right
        if operator == "%":
            if isinstance(left, str):
                _check_percent_format(left)
            return check_weight(left % right)
        return check_weight(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(
            getattr(__obj, "__self__", None), str | bytes | int
        ):
            args = __self._check_method(__obj, args, kwargs)
        return check_weight(super().call(__context, __obj, *args, **kwargs))

    @staticmethod
    def _check_method(
        method: types.BuiltinMethodType, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        """Pre-checks for the string methods that can multiply size."""
        name = method.__name__
        if name in _REFUSED_METHODS:
            raise SecurityError(f"{name}() is not available in templates")
        _check_numbers(args, kwargs)
        if name == "replace" and len(args) >= 2:
            _check_replace(method.__self__, *args[:3])
        if name == "join" and args:
            items = list(args[0])
            _check_join(items, method.__self__)
            args = (items, *args[1:])
        return args

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_str_format(str(value.__self__))
        return wrapped

    def unsafe_undefined(self, obj: Any, attribute: str) -> PigeonUndefined:
        return PigeonUndefined(
            hint=f"access to {attribute!r} is not allowed",
            obj=obj,
            name=attribute,
            exc=SecurityError,
        )


def static_problem(tree: nodes.Template) -> tuple[int, str] | None:
    """(line, message) of the first construct refused before any render, else None.

    Private attribute access is refused at render time too; finding it here tells
    the author when the campaign is saved. Loading other templates has no meaning
    for a campaign (there is no loader).
    """
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: object = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            return node.lineno, f"access to {name!r} is not allowed"
    for found in tree.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        return found.lineno, "include, extends and import are not available in campaign templates"
    return None


def render_limited(template: Template, context: dict[str, Any], deadline: float) -> str:
    """Render with the deadline in force and the output held under MAX_OUTPUT.

    `context` must already hold GLOBALS: it is shared, not copied, by every template
    of a message (Jinja keeps a template's own assignments apart from it). Output is
    counted every RENDER_BATCH chunks, which keeps the count cheap.
    """
    token = _deadline.set(deadline)
    try:
        chunks = template.root_render_func(template.new_context(context, shared=True))
        parts: list[str] = []
        size = 0
        while batch := list(islice(chunks, RENDER_BATCH)):
            parts += batch
            size += sum(map(len, batch))
            if size > MAX_OUTPUT:
                raise TemplateLimitError(f"output larger than {MAX_OUTPUT} characters")
        return "".join(parts)
    finally:
        _deadline.reset(token)


def describe(exc: BaseException) -> str:
    """What went wrong, in the words an author needs."""
    if isinstance(exc, UndefinedError | SecurityError | TemplateError) and exc.message:
        return exc.message
    if isinstance(exc, RecursionError):
        return "recursion too deep"
    return f"{type(exc).__name__}: {exc}"


def error_line(exc: BaseException, template: Template) -> int | None:
    """The template line an exception raised while rendering `template` came from."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line
