import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True, scope="session")
def _isolated_kernel_cache(tmp_path_factory):
    """Compiled kernels go to a per-session cache directory, never the user's."""
    if "BEA_CACHE_DIR" not in os.environ:
        os.environ["BEA_CACHE_DIR"] = str(tmp_path_factory.mktemp("bea-cache"))
    yield
