from __future__ import annotations

import pytest

from tests.export.helpers import ritardando_waltz


@pytest.fixture(scope="session")
def waltz_result():
    return ritardando_waltz()


@pytest.fixture(params=["example", "waltz"])
def any_result(request, example_result, waltz_result):
    """The real analysis of the bundled example, and a constructed 3/4 ritardando with pickups."""
    return example_result if request.param == "example" else waltz_result
