"""The tools' shared argument checks (gattn_mm/apis/cli.py) and tools/infer.py's
isolation of an input that fails inside the model."""
import os
import os.path as osp
import sys
from types import SimpleNamespace

import pytest
import torch

from gattn_mm.apis.cli import (check_class_count, check_resumable, checkpoint_arg,
                               label_set_options, refuse_overwriting_inputs)
from gattn_mm.datasets.transforms import ImageReadError

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PUBLISHED = osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_20261129-7edf335a.pth')


def test_checkpoint_arg(tmp_path):
    import argparse
    for value, error in (('', 'empty'), (' ', 'empty'), (str(tmp_path), 'is a folder'),
                         (str(tmp_path / 'x.pth'), 'no such checkpoint file')):
        with pytest.raises(argparse.ArgumentTypeError, match=error):
            checkpoint_arg(value)
    assert checkpoint_arg(PUBLISHED) == PUBLISHED
    assert checkpoint_arg('https://host/w-1234abcd.pth') == 'https://host/w-1234abcd.pth'


def test_resume_needs_a_training_state(tmp_path):
    with pytest.raises(SystemExit, match='holds no training state.*load_from='):
        check_resumable(PUBLISHED)  # weights only
    state = {'meta': {}, 'message_hub': {}, 'optimizer': {}, 'state_dict': {}}
    torch.save(state, tmp_path / 'epoch_1.pth')
    check_resumable(str(tmp_path / 'epoch_1.pth'))
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(SystemExit, match=f'checkpoint {tmp_path / "bad.pth"}: cannot read'):
        check_resumable(str(tmp_path / 'bad.pth'))
    with pytest.raises(SystemExit, match='--resume: .*no such checkpoint file'):
        check_resumable(str(tmp_path / 'none.pth'))


def test_outputs_never_overwrite_inputs(tmp_path):
    image = tmp_path / 'a.png'
    image.write_bytes(b'x')
    os.symlink(image, tmp_path / 'link.png')
    refuse_overwriting_inputs([str(tmp_path / 'b.png')], [str(image)], '--out')
    for out in (str(image), str(tmp_path / 'link.png'), f'{tmp_path}/./a.png'):
        with pytest.raises(SystemExit, match=f'--out would overwrite the input {out}'):
            refuse_overwriting_inputs([out], [str(image)], '--out')


def test_class_count_of_the_data_and_the_model():
    model = SimpleNamespace(data_preprocessor=SimpleNamespace(num_classes=2))
    dataset = SimpleNamespace(metainfo={'classes': ('a', 'b', 'c')}, ann_file='ann.txt')
    with pytest.raises(SystemExit, match=r'has 3 classes .* '
                                         r'model.data_preprocessor.num_classes=3'):
        check_class_count(model, dataset, 'cfg.py')
    with pytest.raises(SystemExit, match='ann.txt'):  # a DDP-wrapped model too
        check_class_count(SimpleNamespace(module=model), dataset, 'cfg.py')
    dataset.metainfo['classes'] = ('a', 'b')
    check_class_count(model, dataset, 'cfg.py')


def test_every_option_of_the_label_set_named_at_once():
    """Species folders of another count: every head's num_classes; a presence task
    (a folder "absent", anywhere in the sorted names) also the instance head's
    negative_class, which would otherwise leave its MIL loss off silently."""
    def model(k, negative):
        return SimpleNamespace(head=SimpleNamespace(num_classes=k),
                               instance_head=SimpleNamespace(num_classes=k,
                                                             negative_class=negative),
                               data_preprocessor=SimpleNamespace(num_classes=k))
    assert label_set_options(model(4, None), ['a', 'b', 'c', 'd']) == []
    assert label_set_options(model(4, None), ['absent', 'ring']) == [
        'model.head.num_classes=2', 'model.instance_head.num_classes=2',
        'model.data_preprocessor.num_classes=2', 'model.instance_head.negative_class=0']
    assert label_set_options(model(2, 0), ['absent', 'ring']) == []
    assert label_set_options(model(3, 0), ['a', 'absent', 'c']) == [
        'model.instance_head.negative_class=1']
    assert label_set_options(model(2, 0), ['benign', 'malignant']) == []  # BreakHis
    dataset = SimpleNamespace(metainfo={'classes': ('absent', 'ring')}, data_root='d/x')
    with pytest.raises(SystemExit, match=r"d/x.*'absent', 'ring'.*--cfg-options "
                                         r"model.head.num_classes=2 model.instance_head."
                                         r"num_classes=2 model.data_preprocessor.num_classes=2 "
                                         r"model.instance_head.negative_class=0"):
        check_class_count(model(4, None), dataset, 'cfg.py')


def test_infer_loses_only_the_input_that_fails_inside_the_model():
    """A slide whose tiles fail while the model reads them: the batch is run again one
    by one; the other inputs keep their results, the bad one is reported."""
    sys.path.insert(0, ROOT)
    from tools.infer import predict

    def inferencer(inputs, batch_size):
        if 'bad.tif' in inputs:
            raise ImageReadError('bad.tif: cannot read tile (0, 0)')
        return [dict(pred_score=0.9, name=i) for i in inputs]

    failed = []
    out = predict(inferencer, ['a.png', 'bad.tif', 'c.png'], ['a.png', 'bad.tif', 'c.png'],
                  lambda path, err: failed.append((path, str(err))))
    assert [(p, r['name']) for p, r in out] == [('a.png', 'a.png'), ('c.png', 'c.png')]
    assert failed == [('bad.tif', 'bad.tif: cannot read tile (0, 0)')]


def test_resume_by_url_is_left_to_the_loader():
    check_resumable('https://host/epoch_3.pth')  # no local check, no network


def test_amp_wiring_of_the_gpu_check():
    """What tools/device/gpu_check.py asks of tools/train.py on a GPU (--amp and a
    bf16 dtype) becomes mmengine's AmpOptimWrapper in bf16 with a dynamic loss
    scale; the dry run on the CPU cannot build it (it asserts a GPU)."""
    from mmengine.config import Config

    from tools import train
    args = train.parse_args(['configs/gattn_digitbags.py', '--amp', '--work-dir', 'w',
                             '--cfg-options', 'optim_wrapper.dtype=bfloat16'])
    cfg = train.merge_args(Config.fromfile(args.config), args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16' and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.optimizer.type  # the recipe's optimizer is kept


@pytest.mark.parametrize('config', ['configs/gattn_digitbags.py', 'configs/gattn_megapixel.py',
                                    'configs/gattn_digitbags_native.py'])
def test_tta_of_the_digit_configs_never_flips(config):
    """tools/test.py CONFIG CKPT --tta on the shipped digit configs: refused with the
    reason (their views are the model's own TTA), never mmpretrain's flip fallback."""
    from tools import test as test_tool
    with pytest.raises(SystemExit, match='does not fall back to flip TTA') as err:
        test_tool.main([config, PUBLISHED, '--tta'])
    assert config in str(err.value)
