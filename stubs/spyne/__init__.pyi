# The parts of spyne 2.14 the project uses (server/spyne_service.py), typed: spyne ships no
# annotations and PyPI has no stubs for it. Only what is called; add a name before using it.

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

from spyne.protocol import ProtocolBase

_P = ParamSpec("_P")
_R = TypeVar("_R")

class ModelBase:
    class Attributes:
        min_occurs: int
        max_occurs: int | Decimal  # Decimal("Infinity") for "unbounded"

    @classmethod
    def customize(cls, **kwargs: Any) -> type[Self]: ...

class SimpleModel(ModelBase): ...
class Unicode(SimpleModel): ...
class Boolean(SimpleModel): ...

class ComplexModelBase(ModelBase):
    # declared as (name, type) pairs; spyne's metaclass makes it a TypeInfo
    _type_info: ClassVar[Any]
    def __init__(self, **kwargs: Any) -> None: ...
    # a staticmethod taking the class, as spyne calls it: cls.get_flat_type_info(cls)
    @staticmethod
    def get_flat_type_info(cls: type[ComplexModelBase]) -> Mapping[str, type[ModelBase]]: ...

class ComplexModel(ComplexModelBase): ...

class Fault(ComplexModelBase, Exception):
    faultcode: str
    faultstring: str
    def __init__(
        self,
        faultcode: str = "Server",
        faultstring: str = "",
        faultactor: str = "",
        detail: Any = None,
        lang: str = "en",
    ) -> None: ...

class MethodDescriptor:
    # the decorated function, called as function(ctx, *arguments)
    function: Callable[..., Any]
    # the request's wrapper type: its members are the parameters, in order
    in_message: type[ComplexModelBase]
    out_message: type[ComplexModelBase]

class Application:
    def __init__(
        self,
        services: Iterable[type[Service]],
        tns: str,
        name: str | None = None,
        in_protocol: ProtocolBase | None = None,
        out_protocol: ProtocolBase | None = None,
    ) -> None: ...
    def call_wrapper(self, ctx: MethodContext) -> Any: ...

class MethodContext:
    app: Application
    descriptor: MethodDescriptor

class Service:
    public_methods: ClassVar[Mapping[str, MethodDescriptor]]

# @rpc leaves the function in the class as a staticmethod (spyne.service._gen_methods)
def rpc(*params: Any, **kparams: Any) -> Callable[[Callable[_P, _R]], staticmethod[_P, _R]]: ...
