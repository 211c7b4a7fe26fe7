"""One small registry per axis (encoders, sharing methods, weightings, samplers, datasets).

A component's constructor signature is its config schema: keyword-only arguments with
defaults. The registry reads that signature to validate config dictionaries (unknown keys and
wrong types fail with the list of valid keys) and to describe every entry (``textmtl describe``).
Registration is explicit: each package ``__init__`` imports its members, no folder scanning.

Components can contain components: a registry made with ``base=SomeClass`` builds the
arguments annotated ``SomeClass`` (or ``list[SomeClass]``) of other components from their
config (``{name: ..., ...params}`` or a bare name), validating them against its own entries.
So a sharing method takes ``regularizers: list[Regularizer]`` and a config lists
``regularizers: [{name: l2_to_mean, weight: 0.01}]``; ``textmtl describe`` shows them nested.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")

_MISSING = inspect.Parameter.empty

#: component base class -> the registry that builds its members (see module docstring)
_COMPONENT_REGISTRIES: dict[type, "Registry"] = {}


def component_registry(annotation: Any) -> tuple["Registry", bool] | None:
    """(registry, is_list) when ``annotation`` is a registered component class, a list of one,
    or either of them optional; None otherwise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        found = [component_registry(a) for a in typing.get_args(annotation) if a is not type(None)]
        found = [f for f in found if f is not None]
        return found[0] if found else None
    if origin in (list, tuple, typing.Sequence):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(args) == 1 and isinstance(args[0], type) and args[0] in _COMPONENT_REGISTRIES:
            return _COMPONENT_REGISTRIES[args[0]], True
        return None
    if isinstance(annotation, type) and annotation in _COMPONENT_REGISTRIES:
        return _COMPONENT_REGISTRIES[annotation], False
    return None


def _component_entry(value: Any, where: str) -> tuple[str, dict[str, Any]]:
    """A nested component's (name, params) from ``name`` or ``{name: ..., **params}``."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return value["name"], {k: v for k, v in value.items() if k != "name"}
    raise ConfigError(f"'{where}' must be a component name or a mapping with a 'name' key, got {value!r}")


@dataclass(frozen=True)
class ParameterInfo:
    """One config parameter of a registered component."""

    name: str
    annotation: Any
    default: Any
    required: bool

    def type_name(self) -> str:
        return _type_name(self.annotation)


def _type_name(annotation: Any) -> str:
    if annotation is _MISSING:
        return "any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _matches(value: Any, annotation: Any) -> bool:
    """Loose runtime type check of a config value against a constructor annotation."""
    if annotation is _MISSING or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return all(_matches(v, args[0]) for v in value) if len(args) == 1 else True
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(annotation)
        return all(_matches(v, args[1]) for v in value.values()) if len(args) == 2 else True
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


class Registry(Generic[T]):
    """Named constructors of one axis, with their keyword-only parameters as config schema.

    Args:
        axis: what the registry holds ("encoder", "sharing", ...), used in error messages.
    """

    def __init__(self, axis: str, base: type | None = None) -> None:
        self.axis = axis
        self._entries: dict[str, Callable[..., T]] = {}
        if base is not None:  # arguments annotated with ``base`` are built by this registry
            _COMPONENT_REGISTRIES[base] = self

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class (or factory) under ``name``."""

        def decorate(constructor: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.axis} {name!r} is registered twice")
            self._entries[name] = constructor
            constructor.registry_name = name  # type: ignore[attr-defined]
            return constructor

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.axis} {name!r}; expected one of: {', '.join(self.names())}"
            )
        return self._entries[name]

    def parameters(self, name: str) -> list[ParameterInfo]:
        """The keyword-only parameters of an entry: its config schema."""
        constructor = self.get(name)
        target = constructor.__init__ if isinstance(constructor, type) else constructor
        hints = typing.get_type_hints(target)
        params = []
        for p in inspect.signature(target).parameters.values():
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue
            params.append(
                ParameterInfo(p.name, hints.get(p.name, _MISSING), p.default, p.default is _MISSING)
            )
        return params

    def validate(self, name: str, params: dict[str, Any], where: str) -> dict[str, Any]:
        """Check ``params`` against the schema of ``name``; ``where`` names the config key."""
        schema = {p.name: p for p in self.parameters(name)}
        for key, value in params.items():
            if key not in schema:
                valid = ", ".join(sorted(schema)) or "(none)"
                raise ConfigError(
                    f"unknown key '{where}.{key}' for {self.axis} {name!r}; valid keys: {valid}"
                )
            nested = component_registry(schema[key].annotation)
            if nested is not None:
                self._validate_nested(nested, value, f"{where}.{key}")
                continue
            if not _matches(value, schema[key].annotation):
                raise ConfigError(
                    f"'{where}.{key}' of {self.axis} {name!r} must be "
                    f"{schema[key].type_name()}, got {value!r} ({type(value).__name__})"
                )
        missing = [k for k, p in schema.items() if p.required and k not in params]
        if missing:
            raise ConfigError(f"{self.axis} {name!r} needs '{where}.{missing[0]}'")
        return params

    @staticmethod
    def _validate_nested(nested: tuple["Registry", bool], value: Any, where: str) -> None:
        registry, many = nested
        if value is None:
            return
        if many and not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list of {registry.axis} configs, got {value!r}")
        for i, item in enumerate(value if many else [value]):
            item_where = f"{where}.{i}" if many else where
            if not isinstance(item, str) and not isinstance(item, dict):
                continue  # an already built component (Python API)
            name, params = _component_entry(item, item_where)
            registry.get(name)
            registry.validate(name, params, item_where)

    def build(self, name: str, *args: Any, params: dict[str, Any] | None = None,
              where: str | None = None) -> T:
        """Validate ``params`` and construct entry ``name`` with positional ``args``.

        Arguments annotated with a component class are built first, from their configs.
        """
        params = dict(params or {})
        self.validate(name, params, where or self.axis)
        for p in self.parameters(name):
            nested = component_registry(p.annotation)
            if nested is None or params.get(p.name) is None:
                continue
            registry, many = nested
            value = params[p.name]
            items = list(value) if many else [value]
            built = []
            for i, item in enumerate(items):
                if isinstance(item, (str, dict)):
                    item_where = f"{where or self.axis}.{p.name}" + (f".{i}" if many else "")
                    item_name, item_params = _component_entry(item, item_where)
                    item = registry.build(item_name, params=item_params, where=item_where)
                built.append(item)
            params[p.name] = built if many else built[0]
        try:
            return self.get(name)(*args, **params)
        except ValueError as error:  # constructors validate values and raise ValueError
            raise ConfigError(f"{where or self.axis}: {error}") from error

    def describe(self) -> list[tuple[str, str, list[ParameterInfo]]]:
        """(name, first docstring line, parameters) for every entry."""
        rows = []
        for name in self.names():
            doc = (inspect.getdoc(self._entries[name]) or "").strip().splitlines()
            rows.append((name, doc[0] if doc else "", self.parameters(name)))
        return rows
