"""Make songmap's networks unloadable in every Python process that has this folder on
``PYTHONPATH`` (Python imports ``sitecustomize`` at start-up): the fast lane's guard.

    PYTHONPATH=tests/no_networks python -m pytest -m "not models and not slow and not browser"

passes only if no test outside the ``models`` marker loads a network, in the test process
or in the CLI, service and batch processes it starts (they inherit ``PYTHONPATH``). CI runs
its fast lane this way. Nothing is imported ahead: ``songmap.models.registry``,
``songmap.models.bundled`` and the loaders of the consulted networks (``bar_gru``,
``tcn_tempo``) are patched as they are imported, so tests of what ``import songmap`` loads
see the usual modules.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any


class NetworksForbidden(BaseException):
    """Not an ``Exception``: songmap's ``except Exception`` (model errors) must not absorb it."""


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise NetworksForbidden(
        "a test loaded songmap's networks outside the `models` marker (tests/no_networks is "
        "on PYTHONPATH): mark it @pytest.mark.models or use golden_result")


def _patch(module: ModuleType) -> None:
    if module.__name__ == "songmap.models.registry":
        get = module.ModelRegistry._get

        def guarded_get(self: Any, name: str) -> Any:
            # every network a registry runs comes from here; a network that cannot load
            # (a test of that error) still gets its ModelError
            get(self, name)
            return _forbidden()

        module.ModelRegistry._get = guarded_get
    elif module.__name__ == "songmap.models.bundled":  # the weight files themselves
        module.__dict__["weights_path"] = _forbidden
    else:  # the networks the rhythm decisions consult, loaded beside the registry
        for loader in ("bundled_bar_grus", "bundled_tcn_tempo"):
            if loader in module.__dict__:
                module.__dict__[loader] = _forbidden


class _PatchOnImport(MetaPathFinder):
    targets = ("songmap.models.registry", "songmap.models.bundled", "songmap.models.bar_gru",
               "songmap.models.tcn_tempo")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name not in self.targets:
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _patch(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _PatchOnImport())
