"""A deployment started without an injector runs no fault code: none of it is even imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.hooks import NO_HOOKS, load_hooks

PROCESS_ROOTS = (
    "choreography.__main__",
    "choreography.bootstrap",
    "choreography.runtime",
    "orchestration.worker",
    "orchestration.bootstrap",
    "orchestration.runtime",
    "monitor.app",
)


def test_the_process_roots_import_nothing_of_the_fault_injector() -> None:
    imports = "; ".join(f"import {module}" for module in PROCESS_ROOTS)
    wanted = "m.startswith(('shared.faults', 'harness'))"
    probe = f"{imports}; import sys; print(sorted(m for m in sys.modules if {wanted}))"

    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert found.stdout.strip() == "[]"


def test_no_hooks_setting_means_no_middleware_at_either_seam() -> None:
    assert load_hooks("", "choreography") is NO_HOOKS
    assert (NO_HOOKS.step, NO_HOOKS.publish) == ((), ())


def test_the_chaos_hooks_are_named_by_the_setting_and_built_for_the_variant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGA_FAULTS_DIR", "/nonexistent/faults")
    hooks = load_hooks("shared.faults.deployment:chaos_hooks", "orchestration")
    assert len(hooks.step) == 1 and len(hooks.publish) == 1
