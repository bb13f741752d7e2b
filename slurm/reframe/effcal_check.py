# effcal as a ReFrame check (ReFrame 4): runs a plan with `effcal run`, passes when effcal
# says PASSED and every record of its calibration JSON is valid, and reports each record's
# median rate and efficiency as a performance variable. Build effcal on a compute node first
# (slurm/README.md); the site's ReFrame configuration supplies the scheduler and launcher.
#
#   reframe -C <site config> -c slurm/reframe/effcal_check.py -r
#   reframe ... -S plan=configs/hpci-cluster.toml -S nodes=2 -S threads=4 -r
#   reframe ... -S baseline=results/acceptance.json -S tolerance=0.1 -r
#
# Variables (-S name=value): effcal (the binary), plan, nodes, ranks_per_node (0: one per
# core of the partition, or one per GPU for a GPU plan), threads (per rank; 0: 1, or for a
# GPU plan the node's cores over its GPUs), baseline (a calibration JSON: each variable must
# reach its value less `tolerance`, a fraction).
import json
import os
import re

import reframe as rfm
import reframe.utility.sanity as sn
from reframe.core.builtins import run_after, run_before, sanity_function, variable
from reframe.core.exceptions import SanityError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SanityError(f'{path}: not a calibration JSON: {e}') from e


def gpu_plan(path):
    '''True where the plan runs on GPUs ([run] device = "gpu").'''
    try:
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            with open(path) as f:
                return re.search(r'(?m)^\s*device\s*=\s*"gpu"', f.read()) is not None
        with open(path, 'rb') as f:
            return tomllib.load(f).get('run', {}).get('device') == 'gpu'
    except (OSError, ValueError) as e:
        raise ValueError(f'plan {path}: {e}') from e


def host_cores():
    '''The physical cores this process may run on (distinct package and core ids).'''
    ids = set()
    for cpu in os.sched_getaffinity(0):
        topo = f'/sys/devices/system/cpu/cpu{cpu}/topology'
        try:
            with open(f'{topo}/physical_package_id') as p, open(f'{topo}/core_id') as c:
                ids.add((p.read().strip(), c.read().strip()))
        except OSError:
            ids.add(('cpu', str(cpu)))
    return len(ids)


def record_name(r):
    '''A record's variable name: kernel, precision, size, and each setting that is not the
    plain one (input scaling, f16 accumulation, refinement, f16 stencil arithmetic).'''
    p = r.get('params', {})
    parts = [r['kernel'], r['precision']]
    if 'n' in p:
        parts.append(f"n{p['n']}")
    if 'size' in p:
        parts.append('x'.join(str(x) for x in p['size']))
    if p.get('scaling', 'none') != 'none':
        parts.append(f"scaling_{p['scaling']}")
    if p.get('accumulation') == 'f16':
        parts.append('accumulate_f16')
    if p.get('refine', 'ir') != 'ir':
        parts.append(f"refine_{p['refine']}")
    if r['kernel'] not in ('gemm', 'hpl-mxp') and p.get('arithmetic') == 'f16':
        parts.append('arithmetic_f16')
    return '_'.join(parts).replace('-', '_')


def variables(calibration):
    '''{name: (value, unit)} for a calibration: each record's median rate (GFLOP/s; stencils:
    GB/s by the STREAM count) and efficiency (% of the best rate of the FMA kernel of its
    arithmetic; stencils: of the run's triad), and the medians of the peaks and the triad.'''
    out = {}
    for prec, p in sorted(calibration.get('peaks', {}).get('per_precision', {}).items()):
        if p.get('empirical'):
            out[f'peak_{prec}'] = (p['empirical']['median'], 'GOP/s' if prec.startswith('int') else 'GFLOP/s')
    triad = calibration.get('peaks', {}).get('stream_triad')
    if triad and triad.get('gbs'):
        out['triad'] = (triad['gbs']['median'], 'GB/s')
    for r in calibration.get('records', []):
        base = record_name(r)
        name, again = base, 1
        while name in out:
            again += 1
            name = f'{base}_{again}'
        if r.get('bandwidth_gbs'):
            out[name] = (r['bandwidth_gbs']['median'], 'GB/s')
        else:
            out[name] = (r['gflops']['median'], 'GFLOP/s')
        eff = (r.get('efficiency') or {}).get('vs_empirical')
        if eff is not None:
            out[f'{name}_eff'] = (100.0 * eff, '%')
    return out


@rfm.simple_test
class effcal_plan(rfm.RunOnlyRegressionTest):
    descr = 'effcal: measured efficiency of GEMM, HPL-MxP and stencils per precision'
    valid_systems = ['*']
    valid_prog_environs = ['*']
    sourcesdir = None
    tags = {'effcal', 'benchmark'}
    keep_files = ['calibration.json']

    effcal = variable(str, value=os.path.join(ROOT, 'target', 'release', 'effcal'))
    plan = variable(str, value=os.path.join(ROOT, 'configs', 'local.toml'))
    nodes = variable(int, value=1)
    ranks_per_node = variable(int, value=0)
    threads = variable(int, value=0)
    baseline = variable(str, value='')
    tolerance = variable(float, value=0.1)

    @run_after('setup')
    def set_job(self):
        plan = self.plan if os.path.isabs(self.plan) else os.path.join(ROOT, self.plan)
        gpus = gpu_plan(plan)
        part = self.current_partition
        cores = part.processor.num_cores
        if not cores and part.scheduler.registered_name == 'local':
            cores = host_cores()
        per_node = self.ranks_per_node
        if per_node <= 0 and gpus:
            per_node = sum(d.num_devices for d in part.select_devices('gpu'))
            if not per_node:
                raise ValueError(f'{plan} is a GPU plan, a rank per GPU: ranks_per_node=0 needs the GPUs of {part.fullname}: '
                                 'give its devices (type "gpu") in the ReFrame configuration, or set -S ranks_per_node=N')
        elif per_node <= 0:
            if not cores:
                raise ValueError(f'ranks_per_node=0 needs the cores of {part.fullname}: give its processor in the '
                                 'ReFrame configuration (or run reframe --detect-host-topology), or set -S ranks_per_node=N')
            per_node = max(1, cores // max(1, self.threads))
        threads = self.threads
        if threads <= 0:
            # A rank per core on CPUs; on GPUs the node's cores shared among the GPUs' ranks.
            threads = max(1, cores // per_node) if gpus and cores else 1
        self.num_tasks_per_node = per_node
        self.num_tasks = self.nodes * per_node
        self.num_cpus_per_task = threads
        self.use_multithreading = False  # a rank per physical core (Slurm: --hint=nomultithread)
        if gpus:
            self.num_gpus_per_node = per_node
        self.executable = self.effcal
        self.executable_opts = ['--threads', str(threads), 'run', '--config', plan, '--out', 'calibration.json']

    @sanity_function
    def passed(self):
        return sn.all([sn.assert_found(r'^Result: PASSED', self.stdout), self.valid_records()])

    @sn.deferrable
    def valid_records(self):
        records = load(os.path.join(self.stagedir, 'calibration.json')).get('records', [])
        if not records:
            raise SanityError('calibration.json holds no records')
        failed = [record_name(r) for r in records if not r.get('valid')]
        if failed:
            raise SanityError('FAILED records: ' + ', '.join(failed))
        return True

    @run_before('performance')
    def set_variables(self):
        measured = variables(load(os.path.join(self.stagedir, 'calibration.json')))
        self.perf_variables = {name: sn.make_performance_function(sn.defer(value), unit) for name, (value, unit) in measured.items()}
        if self.baseline:
            base = variables(load(self.baseline))
            self.reference = {'*': {name: (base[name][0], -self.tolerance, None, unit) for name, (_, unit) in measured.items() if name in base}}
