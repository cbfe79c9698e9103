from pidistill.codedeps import code_files


def test_script_code_includes_transitive_modules(repo):
    files = code_files(repo / "scripts" / "train_adapter.py", repo)
    assert "scripts/train_adapter.py" in files
    for module in ("pidistill/sft.py", "pidistill/io.py", "pidistill/smk.py", "pidistill/__init__.py",
                   "pidistill/generation/hf.py", "pidistill/generation/__init__.py", "pidistill/seeding.py"):
        assert module in files
    assert "pidistill/report/tables.py" not in files  # only what the script runs


def test_report_scripts_do_not_depend_on_training(repo):
    files = code_files(repo / "scripts" / "tabulate_study.py", repo)
    assert "pidistill/report/tables.py" in files
    assert "pidistill/sft.py" not in files and "pidistill/tinymodel.py" not in files
