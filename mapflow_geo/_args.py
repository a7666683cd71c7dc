"""Arguments checked where a user calls: one rule per parameter name, one decorator.

:func:`checked` wraps every public entry point and :func:`door` gives an accessor its
implementation's signature; the rules are in DESIGN.md, *Arguments, errors and warnings*.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Rule:
    """What one parameter takes; :meth:`check` raises naming the argument."""

    allowed: str
    test: Callable[[Any], bool]
    value_test: Callable[[Any], bool] | None = None
    hint: Callable[[Any], str] | None = None
    secret: bool = False  # never show the value (a token)

    def check(self, func: str, name: str, value: Any) -> None:
        if not self.test(value):
            raise TypeError(self._message(func, name, value))
        if self.value_test is not None and not self.value_test(value):
            raise ValueError(self._message(func, name, value))

    def _message(self, func: str, name: str, value: Any) -> str:
        shown = "<hidden>" if self.secret else repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        msg = f"{func}(): {name}={shown} ({type(value).__name__}) is not allowed; {name} must be "
        msg += self.allowed
        extra = self.hint(value) if self.hint is not None else ""
        return msg + (f" ({extra})" if extra else "")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def number(
    *, low: float | None = None, high: float | None = None, low_open: bool = False,
    none: bool = False, integer: bool = False, unit: str = "", note: str = "",
    hint: Callable | None = None,
) -> Rule:  # fmt: skip
    """A (whole) number (of ``unit``) in a range, optionally None."""
    allowed = "a whole number" if integer else "a number"
    allowed += f" of {unit}" if unit else ""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '≥'} {low:g}")
    if high is not None:
        bounds.append(f"≤ {high:g}")
    allowed += (" " + " and ".join(bounds)) if bounds else ""
    allowed += f" ({note})" if note else ""
    if none:
        allowed += " or None"
    is_kind = _is_int if integer else _is_number

    def test(v: Any) -> bool:
        return (none and v is None) or is_kind(v)

    def in_range(v: Any) -> bool:
        if v is None:
            return True
        f = float(v)
        if math.isnan(f):
            return False
        if low is not None and (f <= low if low_open else f < low):
            return False
        return high is None or f <= high

    return Rule(allowed, test, in_range, hint)


def jsonable(value: Any) -> Any:
    """The JSON fallback for an argument's value (``json.dumps(..., default=jsonable)``):
    a numpy scalar as the Python number or flag it holds (``np.int64(2)`` → ``2``), so
    that ``params.json`` and the command line's output read the same whether a value
    came from a frame or was typed; anything else as its text."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return str(value)


def choice(*options: str) -> Rule:
    """One of a few strings."""
    allowed = "one of " + ", ".join(repr(o) for o in options)
    return Rule(allowed, lambda v: isinstance(v, str), lambda v: v in options)


def instance(allowed: str, *types: type, none: bool = True, hint: Callable | None = None) -> Rule:
    """An instance of one of ``types`` (or None)."""
    return Rule(
        allowed + (" or None" if none else ""),
        lambda v: (none and v is None) or isinstance(v, types),
        hint=hint,
    )


def _not_text_iterable(v: Any) -> bool:
    return v is None or (isinstance(v, Iterable) and not isinstance(v, (str, bytes, dict)))


def names_list(allowed: str) -> Rule:
    """A list of strings (a bare string would be read letter by letter)."""
    return Rule(allowed + " or None", _not_text_iterable, hint=_wrap_in_list)


def _wrap_in_list(v: Any) -> str:
    return f"for one, write [{v!r}]" if isinstance(v, str) else ""


def _percent_hint(v: Any) -> str:
    return f"{v:g} looks like percent: write {v / 100:g}" if _is_number(v) and 1 < v <= 100 else ""


def _client_hint(v: Any) -> str:
    if isinstance(v, str):
        return "a token goes to MapflowClient(token=...), or set $MAPFLOW_TOKEN"
    return ""


_FRACTION = number(low=0, high=1, none=True, note="a fraction, not percent", hint=_percent_hint)
_SECONDS = number(low=0, unit="seconds")
_PATH = instance("a path (str or os.PathLike)", str, os.PathLike)
_TEXT = instance("a string", str)

#: One rule per parameter name, shared by every door that takes it; a door overrides
#: one where its meaning differs (``errors=``).
RULES: dict[str, Rule] = {
    "model": Rule("a model name such as 'buildings'", lambda v: isinstance(v, str), bool),
    "client": Rule(
        "a MapflowClient or None",
        lambda v: not isinstance(v, (str, bytes, numbers.Number)),
        hint=_client_hint,
    ),
    "blocks": names_list("a list of block names such as ['Classification']"),
    "project": _TEXT,
    "name": _TEXT,
    "run_dir": _PATH,
    "max_credits": number(low=0, none=True, unit="credits"),
    "max_processings": number(low=1, integer=True, none=True),
    "area_limit_km2": number(low=0, low_open=True, none=True, unit="km²"),
    "template_area_limit_km2": number(low=0, low_open=True, none=True, unit="km²"),
    "max_aois": number(low=1, integer=True, none=True),
    "price_per_km2": number(low=0, none=True, unit="credits/km²"),
    "safety_margin": number(low=0, high=0.5, note="a fraction of the limit"),
    "sliver_fraction": number(low=0, high=1, note="a fraction of the limit"),
    "input_errors": choice("raise", "skip"),
    "errors": choice("raise", "warn"),
    "poll_interval": number(low=0, low_open=True, unit="seconds"),
    "min_poll_interval": _SECONDS,
    "adopt_grace_s": _SECONDS,
    "max_outage_s": _SECONDS,
    "max_restarts": number(low=0, integer=True),
    "max_workers": number(low=1, integer=True),
    "progress": instance("True or False", bool, none=False),
    "fresh": instance("True or False", bool, none=False),
    "sleep": Rule("a function sleep(seconds)", callable),
    "clock": Rule("a function returning seconds", callable),
    "max_cloud_cover": _FRACTION,
    "min_aoi_intersection": _FRACTION,
    "min_resolution": number(low=0, none=True, unit="m/px"),
    "max_resolution": number(low=0, none=True, unit="m/px"),
    "max_off_nadir": number(low=0, high=90, none=True, unit="degrees"),
    "providers": names_list("a list of provider names"),
    "product_types": names_list("a list of product types such as ['IMAGE']"),
    "page_size": number(low=1, integer=True),
    "max_results": number(low=0, integer=True, none=True),
    "plan": Rule("a plan GeoDataFrame or None", lambda v: v is None or hasattr(v, "geometry")),
    "token": Rule("a string or None", lambda v: v is None or isinstance(v, str), secret=True),
    "base_url": instance("a URL string", str),
    "retry": Rule("a RetryPolicy or None", lambda v: v is None or hasattr(v, "backoff")),
    "max_retries": number(low=0, integer=True),
    "deadline": _SECONDS,
    "backoff_base": _SECONDS,
    "backoff_max": _SECONDS,
    "max_retry_after": _SECONDS,
    "mosaic": Rule("a mosaic id, a Mosaic or None", lambda v: not isinstance(v, numbers.Number)),
    "tags": names_list("a list of tags"),
    "check": instance("True or False", bool, none=False),
    # a GeoDataFrame is recognised by duck type: this module imports no pandas
    "source": Rule(
        "a dict (see mapflow_geo.sources), a GeoDataFrame of catalog scenes, or None",
        lambda v: v is None or isinstance(v, dict) or hasattr(v, "geometry"),
    ),
}


def unknown_keyword(func: str, given: str, valid: Iterable[str], also: Iterable[str] = ()) -> str:
    """``func() got an unexpected keyword argument 'x'; did you mean 'y'? Valid
    keywords: …`` — the suggestion is taken from ``valid`` and ``also`` (parameters
    usually passed by position), the list shows ``valid``."""
    valid = sorted(valid)
    close = difflib.get_close_matches(given, [*valid, *also], n=1, cutoff=0.6)
    msg = f"{func}() got an unexpected keyword argument {given!r}"
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return msg + f" Valid keywords: {', '.join(valid)}."


def checked(func: F | None = None, /, **overrides: Rule) -> F | Callable[[F], F]:
    """Check a public function's keywords and arguments before it runs.

    Parameters named in :data:`RULES` (or in ``overrides``) are checked, by name, in
    whatever way they were passed (a parameter's own default is always allowed); other
    parameters pass as they are. A function with
    ``**kwargs`` accepts extra keywords, except one that looks like a misspelt named
    parameter (refused with the suggestion), since it would otherwise travel on silently.
    """

    def wrap(f: F) -> F:
        sig = inspect.signature(f)
        params = sig.parameters.values()
        named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        keywords = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        # what a message lists: every keyword but the leading frame (or ``self``)
        shown = keywords[1:] if named and keywords and keywords[0] == named[0] else keywords
        extra_ok = any(p.kind is p.VAR_KEYWORD for p in params)
        rules = {n: overrides.get(n) or RULES.get(n) for n in named}
        defaults = {p.name: p.default for p in params if p.default is not p.empty}  # allowed
        label = f.__name__ if f.__name__ != "__init__" else f.__qualname__.split(".")[-2]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for key in kwargs:
                if key in keywords:
                    continue
                if not extra_ok or difflib.get_close_matches(key, keywords, n=1, cutoff=0.8):
                    raise TypeError(unknown_keyword(label, key, shown, keywords))
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{label}(): {exc}") from None
            for key, value in bound.arguments.items():
                rule = rules.get(key)
                if rule is not None and value is not defaults.get(key, _NO_DEFAULT):
                    rule.check(label, key, value)
            return f(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap(func) if func is not None else wrap


def door(impl: Callable[..., Any]) -> Callable[..., Any]:
    """An accessor method calling ``impl(self._obj, ...)``, with ``impl``'s signature
    (its first parameter, the frame, dropped), name and docstring: ``help()`` and
    completion show the real keywords, and the arguments are checked by ``impl``."""

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return impl(self._obj, *args, **kwargs)

    sig = inspect.signature(impl)
    rest = list(sig.parameters.values())[1:]
    me = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = sig.replace(parameters=[me, *rest])  # type: ignore[attr-defined]
    method.__name__ = impl.__name__
    method.__qualname__ = impl.__name__
    method.__doc__ = impl.__doc__
    method.__module__ = impl.__module__
    return method


def lazy_door(module: str, name: str) -> Callable[..., Any]:
    """An accessor method whose implementation is imported when first used.

    ``lazy_door("mapflow_geo.run", "process")`` in a class body stands for
    ``door(mapflow_geo.run.process)``: the first access to the attribute (a call,
    ``help()``, ``inspect.signature``, completion) imports the module and puts that
    :func:`door` in the class in its place, so importing the accessor imports nothing of
    the layers behind it.
    """
    return _LazyDoor(module, name)  # type: ignore[return-value]


class _LazyDoor:
    """The descriptor behind :func:`lazy_door`."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        self.attr = name

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        owner = type(obj) if owner is None else owner
        method = door(getattr(importlib.import_module(self.module), self.name))
        setattr(owner, self.attr, method)
        return method.__get__(obj, owner)

    def __repr__(self) -> str:
        return f"<lazy door {self.module}.{self.name}>"


__all__ = [
    "RULES",
    "Rule",
    "checked",
    "choice",
    "door",
    "lazy_door",
    "instance",
    "number",
    "unknown_keyword",
]
