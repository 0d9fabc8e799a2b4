"""Every service module keeps the contract `services` relies on (services/_plugin.py)."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from lakehouse_helpers.runtime import services
from lakehouse_helpers.runtime.services import ServicePlugin, kafka, metastore, s3, spark_connect
from lakehouse_helpers.runtime.services._plugin import ServicePlugin as DeclaredPlugin

MODULES = (kafka, s3, metastore, spark_connect)
MEMBERS = {name: value for name, value in vars(DeclaredPlugin).items() if not name.startswith("_")}
ATTRIBUTES = set(DeclaredPlugin.__annotations__)


def _shape(function) -> tuple[list[tuple[str, object, object]], object]:
    """Parameter names, kinds and annotations, and the return annotation (strings: every module
    has `from __future__ import annotations`); a protocol method's `self` is not a module's."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return [(p.name, p.kind, p.annotation) for p in params], signature.return_annotation


def test_the_protocol_declares_what_up_and_check_use():
    methods = {name for name, value in MEMBERS.items() if callable(value)}
    assert sorted(ATTRIBUTES) == ["NAME", "TITLE"]
    assert methods == {"endpoint", "bind", "prepare", "command", "environment", "check", "after_start"}
    for name in methods:
        assert inspect.getdoc(MEMBERS[name]), f"{name} has no docstring"


def test_the_registry_holds_every_module_by_its_name():
    registry = services.SERVICES
    assert registry == {m.NAME: m for m in MODULES}
    assert services.ServicePlugin is DeclaredPlugin


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_module_conforms(module: ModuleType):
    assert isinstance(module, ServicePlugin)  # every member present
    for name in ATTRIBUTES:
        assert isinstance(getattr(module, name), str) and getattr(module, name), name
    for name, declared in MEMBERS.items():
        if not callable(declared):
            continue
        assert _shape(getattr(module, name)) == _shape(declared), f"{module.__name__}.{name}"


def test_a_module_missing_a_member_does_not_conform():
    stand_in = ModuleType("half_a_service")
    for name in ("NAME", "TITLE", "endpoint", "bind", "prepare", "command", "check", "after_start"):
        setattr(stand_in, name, getattr(kafka, name))
    assert not isinstance(stand_in, ServicePlugin)  # no `environment`
    stand_in.environment = kafka.environment
    assert isinstance(stand_in, ServicePlugin)
