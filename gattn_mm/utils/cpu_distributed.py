"""Distributed training and testing without a GPU.

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and the
Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, both of which fail on a
CPU-only machine. :func:`setup_cpu_distributed`, which ``tools/train.py`` and
``tools/test.py`` call before building the Runner, starts a gloo process group (so the
Runner skips ``init_dist``) and asks for ``device_ids=None``. With CUDA nothing
changes: mmengine initialises nccl itself. :func:`cpu_distributed` also ends the group
it started: a gloo rank that exits while its peers still hold their connections makes
them abort ("terminate called without an active exception", SIGABRT) at exit.
"""
import os
import subprocess
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist


def _slurm_env() -> None:
    """Fill torch's env:// variables from SLURM's (as mmengine's slurm init does)."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
        os.environ['MASTER_ADDR'] = addr
    os.environ.setdefault('MASTER_PORT', '29500')


def _mpi_env() -> None:
    os.environ.setdefault('RANK', os.environ['OMPI_COMM_WORLD_RANK'])
    os.environ.setdefault('WORLD_SIZE', os.environ['OMPI_COMM_WORLD_SIZE'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Start gloo distributed training when there is no GPU.

    Args:
        cfg (Config): the training config; its ``env_cfg.dist_cfg.backend`` and
            ``model_wrapper_cfg`` are set for CPU DDP.
        launcher (str): ``pytorch``, ``slurm`` or ``mpi``.

    Returns:
        bool: True when the gloo group was started here, False with CUDA (then the
        Runner initialises nccl as usual) or when a group already exists.
    """
    if launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return False
    if launcher == 'slurm':
        _slurm_env()
    elif launcher == 'mpi':
        _mpi_env()
    elif launcher != 'pytorch':
        raise ValueError(f'unknown launcher {launcher!r}; expected none, pytorch, slurm '
                         f'or mpi')
    dist.init_process_group(backend='gloo', init_method='env://')
    # set through the config itself: Config.setdefault returns a copy of a new dict
    cfg.env_cfg = dict(cfg.get('env_cfg') or {})
    cfg.env_cfg.dist_cfg = dict(cfg.env_cfg.get('dist_cfg') or {}, backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True


@contextmanager
def cpu_distributed(cfg, launcher: str) -> Iterator[bool]:
    """:func:`setup_cpu_distributed` for the body of a tool; a group started here
    is ended when the body ends: after a barrier when it succeeded (every rank
    done before any closes its connections), at once when it failed."""
    started = setup_cpu_distributed(cfg, launcher)
    try:
        yield started
    except BaseException:
        if started and dist.is_initialized():
            dist.destroy_process_group()
        raise
    if started and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
