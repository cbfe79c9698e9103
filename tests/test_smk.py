from pidistill.smk import execution_context


def test_execution_context_names_the_slurm_job_and_gpus():
    env = {"SLURM_JOB_ID": "17", "SLURM_JOB_PARTITION": "gpu", "CUDA_VISIBLE_DEVICES": "0"}
    text = execution_context(env)
    assert "slurm job 17 in partition gpu, CUDA_VISIBLE_DEVICES=0" in text and text.startswith("host ")


def test_execution_context_outside_slurm():
    assert execution_context({}).endswith("CUDA_VISIBLE_DEVICES=<unset>")
    assert "slurm" not in execution_context({})
