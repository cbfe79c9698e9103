from pidistill.smk import execution_context


def test_execution_context_names_the_slurm_job_and_gpus():
    env = {"SLURM_JOB_ID": "17", "SLURM_JOB_PARTITION": "gpu", "CUDA_VISIBLE_DEVICES": "0"}
    text = execution_context(env)
    assert "slurm job 17 in partition gpu, CUDA_VISIBLE_DEVICES=0" in text and text.startswith("host ")


def test_execution_context_outside_slurm():
    assert execution_context({}).endswith("CUDA_VISIBLE_DEVICES=<unset>")
    assert "slurm" not in execution_context({})


import subprocess
import sys
from types import SimpleNamespace

import pytest

from pidistill.smk import loaded_modules, rule_log


class _Input(dict):
    def __getattr__(self, name):
        return self[name]


def _job(tmp_path, code):
    return SimpleNamespace(log=[str(tmp_path / "logs" / "job.log")], rule="some_rule", wildcards={"x": "1"},
                           input=_Input(code=code))


def test_rule_log_captures_subprocesses_and_c_level_writes(tmp_path):
    job = _job(tmp_path, sorted(loaded_modules()))
    with rule_log(job) as log:
        print("from python")
        log.info("from logging")
        subprocess.run([sys.executable, "-c", "import sys; print('child stdout'); print('child stderr', file=sys.stderr)"],
                       check=True)
        import os

        os.write(2, b"raw fd 2\n")
    text = (tmp_path / "logs" / "job.log").read_text()
    for line in ("from python", "from logging", "child stdout", "child stderr", "raw fd 2", "python " + sys.executable):
        assert line in text, line
    # and the process's own stdout/stderr are back afterwards
    proc = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    assert proc.stdout == "ok\n"


def test_rule_log_fails_a_job_that_ran_untracked_code(tmp_path):
    import pidistill.evaluate  # noqa: F401  (loaded, but not declared below)

    declared = sorted(p for p in loaded_modules() if not p.endswith("evaluate.py"))
    with pytest.raises(RuntimeError, match="evaluate.py"):
        with rule_log(_job(tmp_path, declared)):
            pass
    assert "not among its code inputs" in (tmp_path / "logs" / "job.log").read_text()


def test_rule_log_without_code_inputs_checks_nothing(tmp_path):
    job = SimpleNamespace(log=[str(tmp_path / "j.log")], rule="r", wildcards={}, input=_Input())
    with rule_log(job):
        pass


def test_bad_input_ends_a_job_with_one_line_naming_the_culprit(tmp_path):
    from pidistill.io import InputError

    with pytest.raises(SystemExit, match=r"some_rule: error: samples.jsonl:3: no field 'id'"):
        with rule_log(_job(tmp_path, sorted(loaded_modules()))):
            raise InputError("samples.jsonl:3: no field 'id'")
    text = (tmp_path / "logs" / "job.log").read_text()
    assert "error: samples.jsonl:3: no field 'id'" in text and "Traceback" not in text
