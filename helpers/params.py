"""Notebook parameters, checked up front: one call, one clear error, before any work.

Every notebook's first code cell after its ``parameters`` cell runs::

    from helpers import params as P
    P.check(globals(), {"DATASET": P.Dataset(), "EPOCHS": P.Int(min=1), ...})

A rule per parameter says what is allowed; the first value outside its rule raises one
:class:`ParameterError` (a ``ValueError``) whose single line names the parameter, the value
given and what is allowed, e.g. ``EPOCHS = 0: must be an int >= 1``.  Rules: :class:`Int`,
:class:`Float`, :class:`Bool`, :class:`Str`, :class:`Choice`, :class:`Dataset`,
:class:`Target`, :class:`ListOf`, :class:`DictOf`, :class:`Seed` and :class:`Satisfies`.  Relations between parameters (and a
bound no architecture of a space can meet, see ``helpers.methods.munas.check_bounds``) are
checked after the rules with :func:`require`.  Bools are not ints here, NaN and infinities
are not numbers, and ``2.0`` is not an int.

Taught in 00-overview. The bottom layer: may import only :mod:`helpers.data` and
:mod:`helpers.targets` (for the allowed dataset and target names).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from helpers import data as _data
from helpers import targets as _targets

__all__ = ["ParameterError", "check", "require", "Rule", "Int", "Seed", "Float", "Bool", "Str",
           "Choice", "Dataset", "Target", "ListOf", "DictOf", "Satisfies"]


class ParameterError(ValueError):
    """A notebook parameter outside its rule: ``NAME = value: must be ...`` (one line).

    ``name`` and ``value`` are kept as attributes. Taught in 00-overview.
    """

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        given = "" if value is _MISSING else f" = {_show(value)}"
        super().__init__(f"{name}{given}: {allowed}")


_MISSING = object()


def _show(value) -> str:
    s = repr(value)
    return s if len(s) <= 120 else s[:117] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


class Rule:
    """What one parameter may be. ``problem(value)`` is ``None`` when the value is allowed,
    else the reason (``"must be an int >= 1"``). Taught in 00-overview.
    """

    def problem(self, value) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        """What the rule allows, as it reads after "must be"."""
        raise NotImplementedError  # pragma: no cover - interface


def _range(lo, hi, lo_open, hi_open) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


def _in_range(v, lo, hi, lo_open, hi_open) -> bool:
    return ((lo is None or (v > lo if lo_open else v >= lo))
            and (hi is None or (v < hi if hi_open else v <= hi)))


class Int(Rule):
    """An int (not a bool, not ``2.0``) in ``[min, max]``; either bound may be omitted.
    Taught in 00-overview."""

    def __init__(self, min: int | None = None, max: int | None = None):
        self.min, self.max = min, max

    def describe(self) -> str:
        return " ".join(x for x in ("an int", _range(self.min, self.max, False, False)) if x)

    def problem(self, value):
        if _is_int(value) and _in_range(value, self.min, self.max, False, False):
            return None
        return f"must be {self.describe()}"


class Seed(Int):
    """A random seed: an int in ``[0, 2**32 - 1]`` (what NumPy accepts). Taught in 00-overview."""

    def __init__(self):
        super().__init__(min=0, max=2**32 - 1)


class Float(Rule):
    """A finite number (an int is fine, a bool or NaN is not) within the bounds;
    ``min_open`` / ``max_open`` exclude the bound itself. Taught in 00-overview."""

    def __init__(self, min: float | None = None, max: float | None = None, *,
                 min_open: bool = False, max_open: bool = False):
        self.min, self.max, self.min_open, self.max_open = min, max, min_open, max_open

    def describe(self) -> str:
        r = _range(self.min, self.max, self.min_open, self.max_open)
        return " ".join(x for x in ("a number", r) if x)

    def problem(self, value):
        if _is_number(value) and _in_range(value, self.min, self.max, self.min_open, self.max_open):
            return None
        return f"must be {self.describe()}"


class Bool(Rule):
    """``True`` or ``False`` (not 0 / 1, not ``"yes"``). Taught in 00-overview."""

    def describe(self) -> str:
        return "True or False"

    def problem(self, value):
        return None if isinstance(value, bool) else f"must be {self.describe()}"


class Str(Rule):
    """A string; ``empty=False`` forbids ``""``. Taught in 00-overview."""

    def __init__(self, *, empty: bool = True):
        self.empty = empty

    def describe(self) -> str:
        return "a string" if self.empty else "a non-empty string"

    def problem(self, value):
        ok = isinstance(value, str) and (self.empty or value != "")
        return None if ok else f"must be {self.describe()}"


class Choice(Rule):
    """One of ``options`` (compared with ``==`` and of the same type: ``True`` is not ``1``).
    Taught in 00-overview."""

    def __init__(self, options, *, what: str = ""):
        self.options, self.what = list(options), what

    def describe(self) -> str:
        return f"one of {self.what + ' ' if self.what else ''}{self.options!r}"

    def problem(self, value):
        ok = any(type(value) is type(o) and value == o for o in self.options)
        return None if ok else f"must be {self.describe()}"


class Dataset(Choice):
    """A dataset name :func:`helpers.data.load` accepts (``helpers.data.names()``, any case).
    Taught in 00-overview."""

    def __init__(self):
        super().__init__(_data.names(), what="helpers.data.names()")

    def problem(self, value):
        ok = isinstance(value, str) and value.lower() in self.options
        return None if ok else f"must be {self.describe()}"


class Target(Rule):
    """A target name :func:`helpers.targets.get` accepts (``helpers.targets.names()`` or an
    alias, any case). Taught in 00-overview."""

    def describe(self) -> str:
        return f"one of helpers.targets.names() {_targets.names()!r} (aliases accepted)"

    def problem(self, value):
        if isinstance(value, str):
            try:
                _targets.get(value)
                return None
            except (KeyError, ValueError):
                pass
        return f"must be {self.describe()}"


class ListOf(Rule):
    """A list (or tuple) of items that each follow ``item``, with ``min_len`` to ``max_len``
    items; ``unique``: no item twice. Taught in 00-overview."""

    def __init__(self, item: Rule, *, min_len: int = 0, max_len: int | None = None,
                 unique: bool = False):
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique

    def describe(self) -> str:
        if self.max_len is not None and self.max_len == self.min_len:
            n = f"{self.min_len} items"
        elif self.max_len is not None:
            n = f"{self.min_len} to {self.max_len} items"
        else:
            n = f"at least {self.min_len} item{'s' if self.min_len != 1 else ''}" if self.min_len else ""
        extra = ", ".join(x for x in (n, "no repeats" if self.unique else "") if x)
        return f"a list of {self.item.describe()}" + (f" ({extra})" if extra else "")

    def problem(self, value):
        whole = f"must be {self.describe()}"
        if not isinstance(value, (list, tuple)):
            return whole
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return whole
        for i, v in enumerate(value):
            p = self.item.problem(v)
            if p is not None:
                return f"item {i} ({_show(v)}) {p}; {whole}"
        if self.unique and len({repr(v) for v in value}) != len(value):
            return whole
        return None


class DictOf(Rule):
    """A dict whose values follow ``value``; ``keys``: exactly these keys (a list), or a
    :class:`Rule` each key follows (default: non-empty strings). ``min_len`` keys at least.
    Taught in 00-overview."""

    def __init__(self, value: Rule, *, keys=None, min_len: int = 0):
        self.value, self.keys, self.min_len = value, keys, min_len

    def describe(self) -> str:
        if isinstance(self.keys, (list, tuple)):
            k = f"the keys {list(self.keys)!r}"
        else:
            k = f"keys {(self.keys or Str(empty=False)).describe()}"
        n = f", at least {self.min_len}" if self.min_len else ""
        return f"a dict with {k}{n} and values {self.value.describe()}"

    def problem(self, value):
        whole = f"must be {self.describe()}"
        if not isinstance(value, Mapping) or len(value) < self.min_len:
            return whole
        if isinstance(self.keys, (list, tuple)):
            if sorted(map(repr, value)) != sorted(map(repr, self.keys)):
                return whole
        else:
            kr = self.keys or Str(empty=False)
            if any(kr.problem(k) is not None for k in value):
                return whole
        for k, v in value.items():
            p = self.value.problem(v)
            if p is not None:
                return f"[{k!r}] ({_show(v)}) {p}; {whole}"
        return None


class Satisfies(Rule):
    """A value ``test`` accepts: ``test(value)`` returns true (a false result or a
    ``ValueError`` / ``TypeError`` / ``KeyError`` means not allowed); ``allowed`` says what is,
    e.g. ``Satisfies(deploy.parse_model_spec, "a reference model or 'run:NN-name'")``.
    Taught in 00-overview."""

    def __init__(self, test, allowed: str):
        self.test, self.allowed = test, allowed

    def describe(self) -> str:
        return self.allowed

    def problem(self, value):
        try:
            ok = self.test(value)
        except (ValueError, TypeError, KeyError):
            ok = False
        return None if ok else f"must be {self.describe()}"


def _is_namespace(values) -> bool:
    return isinstance(values, dict) and "__builtins__" in values and "__name__" in values


def check(values: Mapping, rules: Mapping[str, Rule]) -> None:
    """Raise :class:`ParameterError` for the first parameter outside its rule.

    ``values``: the notebook's parameters, a dict ``{name: value}`` whose names must be
    exactly those of ``rules`` (a parameter without a rule, or a rule without a parameter,
    is an error: a new parameter cannot slip through unchecked); or the notebook's
    ``globals()``, in which each rule's name is looked up (a missing one is an error; the
    committed notebooks' parameter names are compared with their rules by
    ``tests/test_params.py``).  Parameters are checked in the order of ``rules``.
    Taught in 00-overview.
    """
    if not isinstance(rules, Mapping) or not all(isinstance(r, Rule) for r in rules.values()):
        raise TypeError("rules must map parameter names to helpers.params rules (Int(), Choice(...), ...)")
    if _is_namespace(values):
        missing = [k for k in rules if k not in values]
        values = {k: values[k] for k in rules if k in values}
        unruled = []
    else:
        missing = [k for k in rules if k not in values]
        unruled = [k for k in values if k not in rules]
    if unruled:
        raise ParameterError(unruled[0], values[unruled[0]],
                             "no rule for this parameter (every parameter needs one in the "
                             "notebook's parameter check)")
    if missing:
        raise ParameterError(missing[0], _MISSING,
                             "not defined: the parameter check has a rule for a parameter "
                             "the parameters cell does not set")
    for name, rule in rules.items():
        p = rule.problem(values[name])
        if p is not None:
            raise ParameterError(name, values[name], p)


def require(ok: bool, name: str, value, allowed: str) -> None:
    """Raise ``ParameterError(name, value, allowed)`` unless ``ok``: a relation between
    parameters, checked after :func:`check`, e.g.
    ``require(SAMPLE <= POPULATION, "SAMPLE", SAMPLE, f"must be <= POPULATION = {POPULATION}")``.
    Taught in 00-overview.
    """
    if not ok:
        raise ParameterError(name, value, allowed)
