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
                }
            ],
        }
    ],
}
