import csv
import os
import os.path as osp

import numpy as np
import pytest
import tifffile
from PIL import Image

import gattn_mm  # noqa: F401
from gattn_mm.datasets import BreakHis, DigitBags, Fungi, parse_breakhis_name
from gattn_mm.datasets.base_microscopy import DataRootError
from gattn_mm.datasets.transforms import (ImageReadError, LoadMicroscopyImage,
                                          RandomFlipRotate90, ResizeToCanvas, read_image)
from gattn_mm.datasets.transforms.loading import to_rgb_uint8
from gattn_mm.evaluation import PatientAccuracy

SUBDIRS = {'A': ('benign', 'adenosis'), 'F': ('benign', 'fibroadenoma'),
           'DC': ('malignant', 'ductal_carcinoma'), 'LC': ('malignant', 'lobular_carcinoma')}


def make_breakhis(root, patients_per_subtype=3, images=2, mags=(40, 100)):
    """A tiny tree with the exact public BreakHis names."""
    breast = osp.join(root, 'BreaKHis_v1', 'histology_slides', 'breast')
    names = []
    for s_idx, (sub, (cls, folder)) in enumerate(SUBDIRS.items()):
        for p in range(patients_per_subtype):
            c = cls[0].upper()
            patient = f'14-{22549 + p * 7 + s_idx * 100}{"AB" if p % 2 else "CD"}'
            slide = osp.join(breast, cls, 'SOB', folder, f'SOB_{c}_{sub}_{patient}')
            for mag in mags:
                os.makedirs(osp.join(slide, f'{mag}X'), exist_ok=True)
                for i in range(1, images + 1):
                    name = f'SOB_{c}_{sub}-{patient}-{mag}-{i:03d}.png'
                    Image.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)).save(
                        osp.join(slide, f'{mag}X', name))
                    names.append((name, patient, mag))
    return names


def test_parse_name():
    info = parse_breakhis_name('SOB_B_A-14-22549AB-40-001.png')
    assert info == dict(malignant=0, subtype='A', patient_id='14-22549AB', magnification=40,
                        seq=1)
    assert parse_breakhis_name('SOB_M_DC-14-2523-400-012.png')['malignant'] == 1
    with pytest.raises(ValueError, match='not a BreakHis image name'):
        parse_breakhis_name('foo.png')


def test_breakhis_parsing_and_patient_disjoint_folds(tmp_path):
    make_breakhis(tmp_path)
    ds = BreakHis(str(tmp_path), split='train', magnification=40)
    assert ds.metainfo['classes'] == ('benign', 'malignant')
    assert all(d['magnification'] == 40 for d in ds)
    info = ds.get_data_info(0)
    assert parse_breakhis_name(info['img_path'])['patient_id'] == info['patient_id']
    assert info['gt_label'] == parse_breakhis_name(info['img_path'])['malignant']
    all_images = BreakHis(str(tmp_path), split='train', magnification='all')
    assert {d['magnification'] for d in all_images.load_data_list()} == {40, 100}
    test_union = set()
    for fold in range(3):
        split_patients = {}
        for split in ('train', 'val', 'test'):
            d = BreakHis(str(tmp_path), split=split, magnification=[40, 100], num_folds=3,
                         fold=fold, lazy_init=False)
            split_patients[split] = {x['patient_id'] for x in d.load_data_list()}
        assert not split_patients['train'] & split_patients['test']
        assert not split_patients['train'] & split_patients['val']
        assert not split_patients['val'] & split_patients['test']
        test_union |= split_patients['test']
    assert len(test_union) == 12  # every patient is tested exactly in one fold
    sub = BreakHis(str(tmp_path), split='test', task='subtype', num_folds=3)
    assert len(sub.metainfo['classes']) == 8
    assert {d['gt_label'] for d in sub.load_data_list()} <= {0, 1, 4, 5}


def test_breakhis_folds_csv(tmp_path):
    names = make_breakhis(tmp_path)
    csv_path = tmp_path / 'Folds.csv'
    with open(csv_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['fold', 'mag', 'grp', 'filename'])
        for i, (name, patient, mag) in enumerate(names):
            w.writerow([1, mag, 'test' if i % 4 == 0 else 'train',
                        f'BreaKHis_v1/histology_slides/breast/x/{name}'])
    test = BreakHis(str(tmp_path), split='test', folds_file=str(csv_path))
    expected = {n for i, (n, _, m) in enumerate(names) if i % 4 == 0}
    assert {osp.basename(d['img_path']) for d in test} == expected
    bad = tmp_path / 'bad.csv'
    bad.write_text('a,b\n1,2\n')
    with pytest.raises(ValueError, match='missing columns'):
        BreakHis(str(tmp_path), split='test', folds_file=str(bad))


def test_breakhis_missing_root(tmp_path):
    with pytest.raises(DataRootError, match='BreaKHis_v1/histology_slides/breast'):
        BreakHis(str(tmp_path / 'nope'))
    with pytest.raises(DataRootError, match='benign'):
        BreakHis(str(tmp_path))


def test_patient_accuracy_hand_computed():
    # patient a: 2/2 right, patient b: 1/3 right, patient c: 0/1 right
    patients = ['a', 'a', 'b', 'b', 'b', 'c']
    gts = [1, 1, 0, 0, 0, 1]
    preds = [1, 1, 0, 1, 1, 0]
    scores = np.array([[.1, .9], [.2, .8], [.7, .3], [.4, .6], [.3, .7], [.6, .4]])
    out = PatientAccuracy.calculate(patients, preds, gts, scores)
    assert out['image_accuracy'] == pytest.approx(100 * 3 / 6)
    assert out['patient_accuracy'] == pytest.approx(100 * (1 + 1 / 3 + 0) / 3)
    # class 1: tp=2, fp=2, fn=1 -> f1 = 4 / 7
    assert out['f1'] == pytest.approx(100 * 4 / 7)
    assert out['auc'] == pytest.approx(7 / 9)
    metric = PatientAccuracy()
    metric.process(None, [dict(patient_id=p, pred_label=np.array([q]), gt_label=np.array([g]),
                               pred_score=s) for p, q, g, s in zip(patients, preds, gts, scores)])
    assert metric.evaluate(6)['patient/patient_accuracy'] == pytest.approx(out['patient_accuracy'])


def test_fungi_folders_and_missing_root(tmp_path):
    for split in ('train', 'test'):
        for species in ('candida', 'aspergillus'):
            os.makedirs(tmp_path / split / species)
            Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / split / species / 'a.png')
            Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / split / species / 'b.jpg')
    ds = Fungi(str(tmp_path), split='test')
    assert ds.metainfo['classes'] == ('aspergillus', 'candida')
    assert len(ds) == 4 and sorted(d['gt_label'] for d in ds.load_data_list()) == [0, 0, 1, 1]
    with pytest.raises(DataRootError, match=r'\{train,val,test\}/<species>'):
        Fungi(str(tmp_path / 'missing'))
    with pytest.raises(DataRootError, match='val folder'):
        Fungi(str(tmp_path), split='val')


def test_image_io(tmp_path):
    img16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    tifffile.imwrite(tmp_path / 'a.tif', img16)
    out = read_image(str(tmp_path / 'a.tif'))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[..., 0].max() == round(img16.max() / 257) and (out[..., 0] == out[..., 2]).all()
    Image.fromarray(np.full((7, 9), 200, np.uint8), 'L').save(tmp_path / 'g.png')
    assert (read_image(str(tmp_path / 'g.png')) == 200).all()
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 10
    rgba[..., 3] = 255
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'c.png')
    out = read_image(str(tmp_path / 'c.png'))
    assert out.shape == (4, 5, 3) and (out[..., 0] == 10).all()
    Image.fromarray(img16.astype(np.uint16)).save(tmp_path / 'p16.png')
    out = read_image(str(tmp_path / 'p16.png'))
    assert out.shape == (20, 30, 3) and out.max() == round(img16.max() / 257)
    res = LoadMicroscopyImage(to_float32=True)(dict(img_path=str(tmp_path / 'g.png')))
    assert res['img'].dtype == np.float32 and res['ori_shape'] == (7, 9)


def test_channel_orders_and_gray(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (11, 13, 3), dtype=np.uint8)
    Image.fromarray(rgb, 'RGB').save(tmp_path / 'c.png')
    gray = rng.integers(0, 256, (11, 13), dtype=np.uint8)
    Image.fromarray(gray, 'L').save(tmp_path / 'g.png')
    path = dict(img_path=str(tmp_path / 'c.png'))
    bgr = LoadMicroscopyImage()(dict(path))['img']
    assert np.array_equal(bgr, rgb[..., ::-1]) and bgr.flags['C_CONTIGUOUS']
    assert np.array_equal(LoadMicroscopyImage(channel_order='rgb')(dict(path))['img'], rgb)
    for order in ('bgr', 'rgb'):
        out = LoadMicroscopyImage(channel_order=order)(dict(img_path=str(tmp_path / 'g.png')))
        assert np.array_equal(out['img'], np.repeat(gray[..., None], 3, axis=-1))
    # gray arrays of every layout and dtype become (H, W, 3) the same way
    for arr in (gray, gray[None], gray[..., None], gray[::2, ::3], gray.astype(np.uint16) * 257):
        out = to_rgb_uint8(arr)
        plane = np.squeeze(arr) if arr.dtype == np.uint8 else gray
        assert out.shape == plane.shape + (3, ) and out.flags['C_CONTIGUOUS']
        assert all(np.array_equal(out[..., c], plane) for c in range(3))


def _truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


def test_truncated_image_error_and_skip(tmp_path, tiny_digitbags):
    import shutil
    root = tmp_path / 'db'
    shutil.copytree(tiny_digitbags, root)
    bad = root / 'images' / 'test' / 'test_000003.png'
    _truncate(bad)
    with pytest.raises(ImageReadError, match='test_000003.png'):
        read_image(str(bad))
    ds = DigitBags(str(root), split='test', pipeline=[dict(type='LoadMicroscopyImage')])
    with pytest.raises(ImageReadError, match='test_000003.png'):
        ds[3]
    skipping = DigitBags(str(root), split='test', skip_invalid=True)
    assert len(skipping) == 7 and skipping.num_skipped == 1
    assert skipping.skipped == [str(bad)]


def test_digitbags_dataset(tiny_digitbags):
    ds = DigitBags(tiny_digitbags, split='val')
    assert len(ds) == 8 and ds.metainfo['classes'] == ('no_9', 'has_9')
    info = ds.get_data_info(0)
    assert info['gt_bboxes'].shape[1] == 4 and len(info['gt_digits']) == len(info['gt_bboxes'])
    with pytest.raises(DataRootError, match='make_digitbags'):
        DigitBags(tiny_digitbags + '_missing')


@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('k', [0, 1, 2, 3])
def test_geometric_transforms_keep_boxes(flip, k):
    img = np.zeros((60, 100, 3), np.uint8)
    box = np.array([[70., 10., 82., 22.]], np.float32)  # a marked "digit"
    img[10:22, 70:82] = 255
    results = dict(img=img.copy(), gt_bboxes=box.copy())
    if flip:
        RandomFlipRotate90.flip(results)
    RandomFlipRotate90.rot90(results, k)
    out, b = results['img'], results['gt_bboxes'][0].astype(int)
    ys, xs = np.nonzero(out[..., 0])
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(b)
    resized = ResizeToCanvas(scale=(50, 50))(dict(img=out, gt_bboxes=results['gt_bboxes']))
    ys, xs = np.nonzero(resized['img'][..., 0] > 127)
    rb = resized['gt_bboxes'][0]
    assert abs(xs.min() - rb[0]) <= 1 and abs(ys.max() + 1 - rb[3]) <= 1
    assert resized['img'].shape == (50, 50, 3)
    sx, sy = resized['scale_factor']
    assert sx == pytest.approx(sy, rel=0.05)


def copy_digitbags(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return str(dst)


@pytest.mark.parametrize('line,message', [
    ('../../../etc/passwd 1', 'is outside data_root'),
    ('/etc/passwd 0', 'is outside data_root'),
    ('images/test/test_000000.png 7', r'label 7 is not a class index in \[0, 2\)'),
    ('images/test/test_000000.png -1', 'label -1 is not a class index'),
    ('images/test/test_000000.png yes', "label 'yes' is not an integer"),
    ('images/test/test_000000.png', 'expected "path label"'),
])
def test_annotation_lines_are_checked_with_file_and_line(tmp_path, tiny_digitbags, line,
                                                         message):
    from gattn_mm.datasets import AnnotationError
    root = copy_digitbags(tiny_digitbags, tmp_path / 'db')
    ann = osp.join(root, 'test.txt')
    lines = open(ann).read().splitlines()
    lines[2] = line
    open(ann, 'w').write('\n'.join(lines) + '\n')
    with pytest.raises(AnnotationError, match=f'test.txt:3: .*{message}'):
        DigitBags(root, split='test')


def test_outside_root_only_by_the_explicit_option(tmp_path):
    from gattn_mm.datasets import AnnotationError
    outside = tmp_path / 'elsewhere.png'
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(outside)
    root = tmp_path / 'fungi'
    root.mkdir()
    (root / 'list.txt').write_text(f'{outside} 1\n')
    with pytest.raises(AnnotationError, match='list.txt:1: .*allow_outside_root=True'):
        Fungi(str(root), ann_file='list.txt', classes=['a', 'b'])
    ds = Fungi(str(root), ann_file='list.txt', classes=['a', 'b'], allow_outside_root=True)
    assert ds.get_data_info(0)['img_path'] == str(outside)


def test_fungi_class_folders_must_be_consistent(tmp_path):
    for split in ('train', 'val'):
        for species in ('candida', 'aspergillus'):
            os.makedirs(tmp_path / split / species)
            Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / split / species / 'a.png')
    os.makedirs(tmp_path / 'val' / 'trichophyton')  # a species train does not know
    with pytest.raises(DataRootError, match=r"\['trichophyton'\] .* not classes of train"):
        Fungi(str(tmp_path), split='val')
    os.makedirs(tmp_path / 'train' / 'empty_species')
    with pytest.raises(DataRootError, match=r"\['empty_species'\] .* hold no image"):
        Fungi(str(tmp_path), split='train')


def test_breakhis_infeasible_selection_is_named(tmp_path):
    make_breakhis(str(tmp_path), patients_per_subtype=1, mags=(40,))
    with pytest.raises(DataRootError, match=r'no images at magnification \(200,\)'):
        BreakHis(str(tmp_path), magnification=200)
    with pytest.raises(DataRootError, match='4 patient.*fewer than num_folds=5'):
        BreakHis(str(tmp_path), magnification=40, num_folds=5)


def test_links_inside_data_root_and_skip_invalid_budget(tmp_path):
    """A folder of data_root that links elsewhere (the usual OpenMMLab layout) is
    inside data_root; skip_invalid reads images with the pipeline's pixel budget."""
    store = tmp_path / 'store'
    store.mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(store / 'a.png')
    root = tmp_path / 'fungi'
    root.mkdir()
    os.symlink(store, root / 'imgs')
    (root / 'list.txt').write_text('imgs/a.png 0\n')
    pipeline = [dict(type='LoadMicroscopyImage', max_pixels=10_000)]
    ds = Fungi(str(root), ann_file='list.txt', classes=['a', 'b'], skip_invalid=True,
               pipeline=pipeline)
    assert len(ds) == 1 and ds.num_skipped == 0
    small = [dict(type='LoadMicroscopyImage', max_pixels=100)]
    with pytest.raises(DataRootError, match='none of the 1 images could be read'):
        Fungi(str(root), ann_file='list.txt', classes=['a', 'b'], skip_invalid=True,
              pipeline=small)
