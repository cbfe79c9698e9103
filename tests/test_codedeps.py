import pytest

from pidistill.codedeps import code_files
from pidistill.domains.registry import LOADERS, loader_module
from pidistill.generation import BACKENDS, backend_module
from pidistill.verifiers import VERIFIERS, domain_settings, verifier_module


def test_script_code_includes_transitive_modules(repo):
    files = code_files(repo / "scripts" / "train_adapter.py", repo)
    assert "scripts/train_adapter.py" in files and "scripts/_repo.py" in files
    for module in ("pidistill/sft.py", "pidistill/io.py", "pidistill/smk.py", "pidistill/__init__.py",
                   "pidistill/generation/hf.py", "pidistill/generation/__init__.py", "pidistill/seeding.py"):
        assert module in files
    assert "pidistill/report/tables.py" not in files  # only what the script runs
    assert "pidistill/generation/vllm_backend.py" not in files


def test_report_scripts_do_not_depend_on_training(repo):
    files = code_files(repo / "scripts" / "tabulate_study.py", repo)
    assert "pidistill/report/tables.py" in files
    assert "pidistill/sft.py" not in files and "pidistill/tinymodel.py" not in files


def test_every_rule_shares_no_stage_code_through_the_log_helper(repo):
    """pidistill/smk.py is run by every rule: it must not pull generation or provenance into all of them."""
    files = code_files(repo / "scripts" / "evaluate_policy.py", repo)
    assert not [f for f in files if "generation" in f or "provenance" in f or "verifiers" in f]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_generation_jobs_run_only_their_backend(repo, backend):
    files = code_files(repo / "scripts" / "sample_attempts.py", repo, [backend_module(backend)])
    other = {"transformers": "pidistill/generation/vllm_backend.py", "vllm": "pidistill/generation/hf.py"}[backend]
    assert backend_module(backend).replace(".", "/") + ".py" in files and other not in files


def test_code_verification_follows_the_judge_that_the_sandbox_names(repo):
    code = code_files(repo / "scripts" / "verify_samples.py", repo, [verifier_module("code")])
    # the zygote interpreter (pool.py starts it by name) and the judge it imports by name
    sandbox = {f"pidistill/verifiers/sandbox/{m}.py" for m in ("__init__", "pool", "zygote", "candidate", "rootfs", "libc")}
    assert {"pidistill/verifiers/code_runner.py", "pidistill/verifiers/code_wire.py"} | sandbox <= set(code)
    assert "pidistill/verifiers/math.py" not in code
    math = code_files(repo / "scripts" / "verify_samples.py", repo, [verifier_module("math")])
    assert "pidistill/verifiers/math_pool.py" in math and "pidistill/verifiers/code_runner.py" not in math


def test_every_registry_entry_names_a_module(repo):
    for table in (LOADERS, BACKENDS):
        for target in table.values():
            assert code_files(repo / "scripts" / "prepare_dataset.py", repo, [target])
    for module in VERIFIERS.values():
        assert code_files(repo / "scripts" / "verify_samples.py", repo, [module])
    with pytest.raises(ValueError, match="no pidistill module"):
        code_files(repo / "scripts" / "prepare_dataset.py", repo, ["pidistill.domains.nosuch"])


def test_loader_modules(repo):
    assert loader_module("toy_math") == "pidistill.domains.toy"
    assert loader_module("humaneval") == "pidistill.domains.code_benchmarks"
    with pytest.raises(ValueError, match="unknown dataset"):
        loader_module("nosuch")


def test_domain_settings_keep_only_what_the_domain_reads():
    cfg = {"workers": 4, "timeout_s": 3, "answer_fallback": True, "isolation": "namespaces", "graded": True}
    assert domain_settings(cfg, "math") == {"workers": 4, "timeout_s": 3, "answer_fallback": True, "graded": True}
    assert domain_settings(cfg, "code") == {"workers": 4, "timeout_s": 3, "isolation": "namespaces"}


def test_declared_code_deps_must_be_literal(tmp_path):
    pkg = tmp_path / "pidistill"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("__code_deps__ = ('pidistill.b',)\n")
    (pkg / "b.py").write_text("")
    (pkg / "c.py").write_text("NAME = 'pidistill.b'\n__code_deps__ = (NAME,)\n")
    script = tmp_path / "s.py"
    script.write_text("import pidistill.a\n")
    assert "pidistill/b.py" in code_files(script, tmp_path)
    other = tmp_path / "t.py"  # (closures are cached per script)
    other.write_text("import pidistill.c\n")
    with pytest.raises(ValueError, match="literal"):
        code_files(other, tmp_path)
