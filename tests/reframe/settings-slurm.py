# The ReFrame configuration of tests/slurm.rs: its single-node test cluster, jobs by sbatch
# (polled with squeue: the test cluster keeps no accounting for sacct), ranks by srun.
site_configuration = {
    'systems': [
        {
            'name': 'testcluster',
            'descr': "tests/slurm/cluster.sh's Slurm",
            'hostnames': ['.*'],
            'partitions': [
                {
                    'name': 'debug',
                    'scheduler': 'squeue',
                    'launcher': 'srun',
                    'environs': ['builtin'],
                    'max_jobs': 1,
                    # The test cluster's two stand-in GPUs (gres on /dev/null and /dev/zero).
                    'devices': [{'type': 'gpu', 'num_devices': 2}],
                    'resources': [{'name': '_rfm_gpu', 'options': ['--gres=gpu:{num_gpus_per_node}']}],
                }
            ],
        }
    ],
}
