"""Settings shared by index-db's tests."""

from __future__ import annotations

import hypothesis

# No per-example deadline: on a loaded 2-core CI machine a slow example is not a failure
# (Hypothesis reports a deadline it cannot reproduce as Flaky).
hypothesis.settings.register_profile("ci", deadline=None, print_blob=True)
hypothesis.settings.load_profile("ci")
