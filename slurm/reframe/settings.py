# A ReFrame configuration for one workstation: the local scheduler and mpirun. On a cluster,
# use the site's configuration (scheduler 'slurm' or 'squeue', launcher 'srun') instead.
site_configuration = {
    'systems': [
        {
            'name': 'workstation',
            'descr': 'this machine, ranks started by mpirun',
            'hostnames': ['.*'],
            'partitions': [
                {
                    'name': 'default',
                    'scheduler': 'local',
                    'launcher': 'mpirun',
                    'environs': ['builtin'],
                    'max_jobs': 1,
                }
            ],
        }
    ],
}
