"""lossatlas.settings: the compile settings the CLI and the tests share, and the compilation cache."""
import os

import jax

from lossatlas import settings


def test_suite_runs_with_the_cli_quick_settings():
    """The test process compiles like `lossatlas run NAME --quick`: quick flags, full-f32 matmuls, the cache."""
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in settings.QUICK_XLA_FLAGS:
        assert flag.split("=")[0] in flags
    assert "--xla_force_host_platform_device_count" in flags or (os.cpu_count() or 1) <= 1
    assert str(jax.config.jax_default_matmul_precision) == "highest"


def test_explicit_flag_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    assert settings._add_xla_flags(("--xla_backend_optimization_level=1", "--xla_foo=2")) == ["--xla_foo=2"]
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=3 --xla_foo=2"


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    for off in ("off", "0", "", "none", "False"):
        monkeypatch.setenv(settings.CACHE_ENV, off)
        assert settings.cache_dir_from_env() is None
    monkeypatch.setenv(settings.CACHE_ENV, str(tmp_path / "c"))
    assert settings.cache_dir_from_env() == tmp_path / "c"
    monkeypatch.delenv(settings.CACHE_ENV)
    assert settings.cache_dir_from_env() == settings.DEFAULT_CACHE_DIR
    # one sub-folder per host CPU and jaxlib version, stable within a machine
    assert settings._host_tag() == settings._host_tag() and len(settings._host_tag()) == 12


def test_unwritable_cache_folder_leaves_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert settings.enable_compilation_cache(blocker / "sub") is None
