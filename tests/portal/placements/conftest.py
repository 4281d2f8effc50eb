"""The advisory tests' portal (real HTTP, both databases) serves the placement tests too."""

from tests.portal.advisories.conftest import jp

__all__ = ["jp"]
