"""The gloo group that tools/train.py and tools/test.py start without a GPU is ended
with the run (a rank that exits with its group open makes its peers abort)."""
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from gattn_mm.utils.cpu_distributed import cpu_distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def one_rank(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('with CUDA mmengine starts nccl itself')
    for key, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)


def test_the_group_started_for_a_run_is_ended_with_it(one_rank):
    cfg = Config(dict(model=dict()))
    with cpu_distributed(cfg, 'pytorch') as started:
        assert started and dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
    assert not dist.is_initialized()


def test_a_failed_run_ends_its_group_and_keeps_its_error(one_rank):
    with pytest.raises(RuntimeError, match='the run failed'):
        with cpu_distributed(Config(dict()), 'pytorch'):
            raise RuntimeError('the run failed')
    assert not dist.is_initialized()


def test_without_a_launcher_nothing_is_started():
    with cpu_distributed(Config(dict()), 'none') as started:
        assert not started and not dist.is_initialized()
