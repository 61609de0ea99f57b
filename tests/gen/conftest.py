from tests.registry.fixtures import basic_registry, pushed  # noqa: F401
