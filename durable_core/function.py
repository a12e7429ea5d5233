"""``@durable``: mark a function ``(ctx, event) -> result`` as a durable function.

The decorator checks the signature at decoration time, keeps the function callable as
written, and carries the options the runtime needs (name, version, timeout). Its event and
result types (with ``Annotated`` extras) are checked when the DurableFunction is made: a type
that cannot cross the journal as JSON is a SerializationError before anything runs. It
registers nothing globally: a :class:`FunctionRegistry` (one per runtime) resolves the
functions you give it.

Invariants:
- A name that is not registered is imported only if its module is under one of the
  registry's allowed prefixes, and that is checked on the name before anything is
  imported: a store record naming ``os:system`` imports nothing.
- An object that carries a durable function (:class:`CarriesDurableFunction`: a saga, a
  Lambda handler) is taken as that function wherever one is accepted (``Runtime.run``,
  ``register``, ``ctx.invoke``, ``durable worker --import``, the Lambda handlers), always
  through :func:`unwrap_durable`; only a ``durable_function`` that is a DurableFunction
  counts.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload, runtime_checkable

from durable_core.errors import (
    FunctionNotFoundError,
    FunctionNotRegisteredError,
    ValidationError,
)
from durable_core.serde import check_type, type_hints

if TYPE_CHECKING:
    from durable_core.async_context import AsyncDurableContext
    from durable_core.context import DurableContext

_LIBRARY = {"durable_core", "saga"}
E = TypeVar("E")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class DurableFunction(Generic[E, R]):
    """A function ``(ctx, event) -> result`` with the options the runtime needs."""

    fn: Callable[[Any, E], Any]
    """The user's function: ``(DurableContext, E) -> R``, or ``async (AsyncDurableContext,
    E) -> R``."""
    name: str
    """The name executions record (default ``module:qualname``) and workers resolve."""
    version: str | None = None
    """Code version; an execution started under one version is never resumed by another."""
    timeout: timedelta | None = None
    """Execution deadline from start; when it passes the execution is cancelled."""
    input_type: Any = field(default=Any)
    """Type the input event is validated into (from the ``event`` annotation)."""
    result_type: Any = field(default=Any)
    """Type the result is serialized by (from the return annotation)."""
    is_async: bool = False
    """True for an ``async def`` function: it receives an AsyncDurableContext and runs on
    an event loop."""

    def __post_init__(self) -> None:
        check_type(self.input_type, what=f"the input event of durable function {self.name!r}")
        check_type(self.result_type, what=f"the result of durable function {self.name!r}")

    def __call__(self, ctx: DurableContext, event: E) -> R:
        """Call a sync durable function directly (an async one: ``await fn.fn(ctx, e)``)."""
        return self.fn(ctx, event)  # type: ignore[no-any-return]


@runtime_checkable
class CarriesDurableFunction(Protocol):
    """An object that carries the durable function it runs: a saga, a Lambda handler."""

    @property
    def durable_function(self) -> DurableFunction[Any, Any]:
        """The durable function this object runs."""
        ...


class DurableLambdaHandler:
    """A Lambda handler ``handler(event, context) -> dict`` that carries its durable function."""

    def __init__(
        self, run: Callable[[Any, Any], dict[str, Any]], durable_function: DurableFunction[Any, Any]
    ) -> None:
        self._run = run
        self.durable_function = durable_function

    def __call__(self, event: Any, lambda_context: Any = None) -> dict[str, Any]:
        return self._run(event, lambda_context)


def unwrap_durable(obj: Any) -> Any:
    """The durable function ``obj`` carries (:class:`CarriesDurableFunction`), else ``obj``."""
    if isinstance(obj, CarriesDurableFunction):
        carried = obj.durable_function
        if isinstance(carried, DurableFunction):
            return carried
    return obj


def _types(fn: Callable[..., Any]) -> tuple[Any, Any]:
    hints = type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())
    input_type = hints.get(params[1].name, Any) if len(params) > 1 else Any
    return input_type, hints.get("return", Any)


def make_durable(
    fn: Callable[[Any, E], Any],
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: timedelta | None = None,
) -> DurableFunction[E, Any]:
    """Wrap ``fn`` after checking it takes ``(ctx, event)`` (sync or ``async def``).

    Raises:
        ValidationError: ``fn`` is not a function of ``(ctx, event)``, or a bad option.
        SerializationError: its event or return annotation cannot cross the journal as JSON.
    """
    if isinstance(fn, DurableFunction):
        return fn
    if not callable(fn):
        raise ValidationError(f"@durable needs a function, got {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"@durable cannot inspect {fn!r}: {e}") from e
    required = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) != 2 and not any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        raise ValidationError(
            f"durable function {getattr(fn, '__qualname__', fn)!r} must take exactly two "
            f"positional parameters (ctx, event); its signature is {sig}"
        )
    if timeout is not None and timeout <= timedelta(0):
        raise ValidationError(f"durable function timeout must be positive, got {timeout}")
    is_async = inspect.iscoroutinefunction(fn)
    _check_context_annotation(fn, is_async)
    input_type, result_type = _types(fn)
    default_name = f"{fn.__module__}:{fn.__qualname__}"
    return DurableFunction(
        fn=fn,
        name=name or default_name,
        version=version,
        timeout=timeout,
        input_type=input_type,
        result_type=result_type,
        is_async=is_async,
    )


def _check_context_annotation(fn: Callable[..., Any], is_async: bool) -> None:
    """Refuse a context annotation that does not match the function's kind."""
    from durable_core.async_context import AsyncDurableContext
    from durable_core.context import DurableContext

    params = list(inspect.signature(fn).parameters.values())
    if not params:
        return
    first = type_hints(fn).get(params[0].name)
    label = getattr(fn, "__qualname__", repr(fn))
    if is_async and first is DurableContext:
        raise ValidationError(
            f"durable function {label!r} is `async def` but its context is annotated "
            "DurableContext: an async durable function receives an AsyncDurableContext "
            "(await its operations). Annotate it AsyncDurableContext, or make the function sync."
        )
    if not is_async and first is AsyncDurableContext:
        raise ValidationError(
            f"durable function {label!r} is sync but its context is annotated "
            "AsyncDurableContext: a sync durable function receives a DurableContext. Make it "
            "`async def`, or annotate it DurableContext."
        )


class _Declare(Protocol):
    """What ``@durable(...)`` returns: the decorator, for sync and async functions."""

    @overload
    def __call__(
        self, fn: Callable[[AsyncDurableContext, E], Coroutine[Any, Any, R]], /
    ) -> DurableFunction[E, R]: ...
    @overload
    def __call__(self, fn: Callable[[DurableContext, E], R], /) -> DurableFunction[E, R]: ...


@overload
def durable(
    fn: Callable[[AsyncDurableContext, E], Coroutine[Any, Any, R]], /
) -> DurableFunction[E, R]: ...
@overload
def durable(fn: Callable[[DurableContext, E], R], /) -> DurableFunction[E, R]: ...
@overload
def durable(
    *, name: str | None = None, version: str | None = None, timeout: timedelta | None = None
) -> _Declare: ...
def durable(
    fn: Callable[[Any, Any], Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: timedelta | None = None,
) -> DurableFunction[Any, Any] | _Declare:
    """Declare a durable function; works bare (``@durable``) and called (``@durable(...)``).

    A sync function receives a DurableContext; an ``async def`` one an AsyncDurableContext
    (and awaits its operations).
    """
    if fn is not None:
        return make_durable(fn)

    def wrap(f: Callable[[Any, Any], Any]) -> DurableFunction[Any, Any]:
        return make_durable(f, name=name, version=version, timeout=timeout)

    return wrap


def import_function(ref: str, *, declared_only: bool = False) -> DurableFunction[Any, Any]:
    """Resolve ``"package.module:attr"`` to a durable function (wrapping a plain one).

    Args:
        ref: the reference.
        declared_only: refuse a function not declared ``@durable`` / ``@saga`` instead of
            wrapping it (what a store record names must have been declared durable).
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise FunctionNotFoundError(
            f"{ref!r} is not a function reference; use the form 'package.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:  # the module's own code: say where, not how Python got there
        raise FunctionNotFoundError(
            f"cannot import module {module_name!r} for {ref!r}: {e.msg} "
            f"({e.filename}, line {e.lineno}). Fix the module and try again."
        ) from e
    except ImportError as e:
        raise FunctionNotFoundError(
            f"cannot import module {module_name!r} for {ref!r}: {e}. Run from the directory "
            "that contains the package, or install it."
        ) from e
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise FunctionNotFoundError(f"module {module_name!r} has no attribute {attr!r}")
    durable_fn = unwrap_durable(target)
    if isinstance(durable_fn, DurableFunction):
        return durable_fn
    if declared_only:
        raise FunctionNotRegisteredError(
            f"{ref!r} is under an allowed module prefix but is not declared durable (@durable "
            "or @saga): a worker runs only functions declared durable or registered with it"
        )
    return make_durable(target, name=ref)


def check_module_prefixes(prefixes: object) -> tuple[str, ...]:
    """Allowed module prefixes as dotted names (a trailing ``.`` is dropped), else an error."""
    if isinstance(prefixes, str) or not isinstance(prefixes, tuple | list):
        raise ValidationError(
            f"allowed_modules must be a tuple of module names, got {prefixes!r:.80}"
        )
    out: list[str] = []
    for prefix in prefixes:
        name = prefix.removesuffix(".") if isinstance(prefix, str) else prefix
        if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
            raise ValidationError(
                f"allowed module prefix {prefix!r:.80} is not a dotted module name "
                "(e.g. 'myapp' or 'myapp.flows')"
            )
        out.append(name)
    return tuple(out)


def project_modules(folder: Path) -> tuple[str, ...]:
    """Top-level packages (folders with ``__init__.py``) and ``*.py`` modules in ``folder``.

    Found by listing the folder, never by importing: a command started in a project trusts
    that project's own code, not the standard library or site-packages.
    """
    names = {
        entry.stem if entry.suffix == ".py" else entry.name
        for entry in folder.iterdir()
        if (entry.suffix == ".py" and entry.is_file())
        or (entry.is_dir() and (entry / "__init__.py").is_file())
    }
    names -= _LIBRARY  # a checkout of this library: its own packages hold no workflows
    return tuple(sorted(n for n in names if n.isidentifier() and not n.startswith("_")))


def module_allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    """True if ``module`` is one of ``prefixes`` or inside one of them (``a`` allows ``a.b``)."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


class FunctionRegistry:
    """The durable functions one runtime may run, by name."""

    def __init__(self, allowed_modules: tuple[str, ...] = ()) -> None:
        self._functions: dict[str, DurableFunction[Any, Any]] = {}
        self.allowed_modules = check_module_prefixes(allowed_modules)

    def register(self, fn: DurableFunction[Any, Any] | Any) -> DurableFunction[Any, Any]:
        """Make ``fn`` (or the durable function it carries) resolvable by its name."""
        durable_fn = make_durable(unwrap_durable(fn))
        self._functions[durable_fn.name] = durable_fn
        return durable_fn

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._functions)

    def resolve(self, name: str) -> DurableFunction[Any, Any]:
        """The registered function called ``name``, else one under an allowed module.

        Raises:
            FunctionNotRegisteredError: not registered, and not a ``module:function`` under
                an allowed prefix (nothing imported).
            FunctionNotFoundError: under an allowed prefix but cannot be imported.
        """
        found = self._functions.get(name)
        if found is not None:
            return found
        module = name.partition(":")[0] if ":" in name else ""
        allowed = self.allowed_modules
        if not module or not module_allowed(module, allowed):
            under = f"is {', '.join(allowed)}" if allowed else "is configured"
            raise FunctionNotRegisteredError(
                f"no durable function named {name!r} is registered with this runtime, and no "
                f"allowed module prefix {under} for it: register it (Runtime(functions=[...]), "
                "`durable worker --import MODULE`) or allow its module "
                "(RuntimeOptions(allowed_modules=...), `durable worker --allow-module "
                "PREFIX`). Nothing was imported."
            )
        fn = import_function(name, declared_only=True)
        self._functions[name] = fn
        return fn
