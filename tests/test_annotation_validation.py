"""Bad annotation input is refused with an error naming the file (and line / key);
the accepted variants (BOM, CRLF, spaces in paths) still load."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

import gattn_mm  # noqa: F401
from gattn_mm.datasets import AnnotationError, BreakHis, DigitBags, Fungi, SlideFolder
from test_datasets import make_breakhis

FIRST = 'images/test/test_000000.png'


@pytest.fixture
def bags(tmp_path, tiny_digitbags):
    """A private copy of the tiny DigitBags."""
    return shutil.copytree(tiny_digitbags, str(tmp_path / 'db'))


def write_ann(root, text, encoding='utf-8'):
    with open(osp.join(root, 'test.txt'), 'w', encoding=encoding, newline='') as f:
        f.write(text)


def edit_json(path, change):
    data = json.load(open(path))
    json.dump(change(data), open(path, 'w'))


# ---------------------------------------------------------------- text annotation files

def test_duplicate_image_names_both_lines(bags):
    write_ann(bags, f'{FIRST} 0\nimages/test/test_000001.png 1\n./{FIRST} 1\n')
    with pytest.raises(AnnotationError, match=r'test.txt:3: .*listed twice \(first at line 1 '
                                              r'with label 0, here with label 1\)'):
        DigitBags(bags, split='test')


@pytest.mark.parametrize('label', ['+1', '0_1', '\u0661', ' 1.0', '1 '])
def test_labels_are_ascii_integers(bags, label):
    write_ann(bags, f'{FIRST} 0\nimages/test/test_000001.png {label}\n')
    if label == '1 ':  # trailing blanks are no part of the label
        assert DigitBags(bags, split='test').get_data_info(1)['gt_label'] == 1
        return
    with pytest.raises(AnnotationError, match=r'test.txt:2: label .* is not an integer'):
        DigitBags(bags, split='test')


def test_bom_and_crlf_are_read(bags):
    lines = open(osp.join(bags, 'test.txt')).read().splitlines()
    write_ann(bags, '\ufeff' + '\r\n'.join(lines) + '\r\n')
    ds = DigitBags(bags, split='test')
    assert len(ds) == len(lines)
    assert osp.relpath(ds.get_data_info(0)['img_path'], bags) == FIRST


@pytest.mark.parametrize('encoding', ['latin-1', 'utf-16'])
def test_other_encodings_name_the_file(bags, encoding):
    write_ann(bags, 'images/test/t\xe9st.png 0\n', encoding)
    with pytest.raises(AnnotationError, match=r'test.txt: not UTF-8 text.*save the file as '
                                              r'UTF-8'):
        DigitBags(bags, split='test')


@pytest.mark.parametrize('text', ['', '\n  \n'])
def test_empty_annotation_file_is_named(bags, text):
    write_ann(bags, text)
    with pytest.raises(AnnotationError, match=r'test.txt: no "path label" line'):
        DigitBags(bags, split='test')


def test_path_with_a_space_is_read(bags):
    shutil.copy(osp.join(bags, FIRST), osp.join(bags, 'images/test/a b.png'))
    edit_json(osp.join(bags, 'test_instances.json'),
              lambda inst: {**inst, 'images/test/a b.png': inst[FIRST]})
    write_ann(bags, 'images/test/a b.png 1\n')
    ds = DigitBags(bags, split='test')
    assert ds.get_data_info(0)['img_path'].endswith('a b.png')
    assert ds.get_data_info(0)['gt_label'] == 1


# ---------------------------------------------------------------- DigitBags JSON files

@pytest.mark.parametrize('entry', [{'boxes': [[1, 2, 3]], 'digits': [1]},
                                   {'boxes': 'abc', 'digits': [1]},
                                   {'boxes': [[1, 2, 3, 4]], 'digits': [1, 2]},
                                   [1, 2]])
def test_bad_instance_entry_names_file_and_image(bags, entry):
    edit_json(osp.join(bags, 'test_instances.json'), lambda inst: {**inst, FIRST: entry})
    with pytest.raises(AnnotationError, match=f"test_instances.json: entry '{FIRST}'"):
        DigitBags(bags, split='test')


def test_instance_file_must_be_an_object(bags):
    edit_json(osp.join(bags, 'test_instances.json'), lambda inst: list(inst))
    with pytest.raises(AnnotationError, match='test_instances.json: expected a JSON object'):
        DigitBags(bags, split='test')


@pytest.mark.parametrize('change,message', [
    (lambda m: {k: v for k, v in m.items() if k != 'classes'},
     'key "classes" must be a non-empty list .* got no such key'),
    (lambda m: {**m, 'classes': 'ab'}, 'key "classes" must be a non-empty list'),
    (lambda m: {**m, 'multi_label': 'false'}, 'key "multi_label" must be a JSON boolean'),
])
def test_meta_keys_are_checked(bags, change, message):
    edit_json(osp.join(bags, 'meta.json'), change)
    with pytest.raises(AnnotationError, match=f'meta.json: {message}'):
        DigitBags(bags, split='test')


def test_invalid_json_names_the_file(bags):
    open(osp.join(bags, 'meta.json'), 'w').write('{bad')
    with pytest.raises(AnnotationError, match='meta.json: invalid JSON at line 1 column 2'):
        DigitBags(bags, split='test')


def test_meta_multi_label_true_is_read(bags):
    edit_json(osp.join(bags, 'meta.json'), lambda m: {**m, 'multi_label': True})
    write_ann(bags, f'{FIRST} 0,1\n')
    assert DigitBags(bags, split='test').get_data_info(0)['gt_label'] == [0, 1]


# ---------------------------------------------------------------- Fungi

def fungi_tree(root, files):
    for rel in files:
        os.makedirs(osp.dirname(osp.join(root, rel)), exist_ok=True)
        Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(osp.join(root, rel), format='PNG')
    return str(root)


def test_fungi_skips_hidden_entries(tmp_path):
    root = fungi_tree(tmp_path, ['train/A/1.png', 'train/B/2.png', 'train/.thumbs/t.png',
                                 'train/A/._1.png', 'val/A/3.png', 'val/.cache/c.png'])
    train = Fungi(root, split='train')
    assert train.metainfo['classes'] == ('A', 'B')
    assert sorted(osp.basename(d['img_path']) for d in train) == ['1.png', '2.png']
    assert len(Fungi(root, split='val')) == 1


def test_fungi_annotation_file_refuses_duplicates(tmp_path):
    root = fungi_tree(tmp_path, ['imgs/a.png'])
    (tmp_path / 'list.txt').write_text('imgs/a.png 0\nimgs/a.png 1\n')
    with pytest.raises(AnnotationError, match=r'list.txt:2: .*listed twice \(first at line 1'):
        Fungi(root, ann_file='list.txt', classes=['a', 'b'])


# ---------------------------------------------------------------- SlideFolder

def slide_root(tmp_path, csv_bytes, names=('s0.tif', 's0.tif.json', 's1.svs', 's2.tiff')):
    """A slide folder: the files are never opened here (no skip_invalid)."""
    (tmp_path / 'slides').mkdir(parents=True)
    for name in names:
        (tmp_path / 'slides' / name).write_bytes(b'x')
    (tmp_path / 'labels.csv').write_bytes(csv_bytes)
    return str(tmp_path)


def test_slide_csv_from_excel_with_bom(tmp_path):
    root = slide_root(tmp_path, b'\xef\xbb\xbfslide_id,label,split\r\ns0,tumor,train\r\n'
                                b's1,normal,train\r\n')
    ds = SlideFolder(root, split='train')
    assert ds.metainfo['classes'] == ('normal', 'tumor') and len(ds) == 2


def test_slide_csv_in_utf16_is_named(tmp_path):
    root = slide_root(tmp_path, 'slide_id,label\ns0,tumor\n'.encode('utf-16'))
    with pytest.raises(AnnotationError, match='labels.csv: not UTF-8 text'):
        SlideFolder(root)


@pytest.mark.parametrize('rows', [['s0,tumor,train', 's1,normal,train', 's0,normal,train'],
                                  ['s0,tumor,train', 's1,normal,train', 's0,tumor,test']])
def test_slide_listed_twice_is_refused(tmp_path, rows):
    root = slide_root(tmp_path, ('slide_id,label,split\n' + '\n'.join(rows) + '\n').encode())
    with pytest.raises(AnnotationError, match=r"labels.csv:4: slide_id 's0' is listed again "
                                              r'\(first at line 2\)'):
        SlideFolder(root, split='train')


def test_integer_labels_sort_numerically(tmp_path):
    root = slide_root(tmp_path, b'slide_id,label\ns0,10\ns1,2\ns2,1\n')
    ds = SlideFolder(root)
    assert ds.metainfo['classes'] == ('1', '2', '10')
    assert ds.get_gt_labels().tolist() == [2, 1, 0]
    mixed = SlideFolder(slide_root(tmp_path / 'm', b'slide_id,label\ns0,10\ns1,b\n'))
    assert mixed.metainfo['classes'] == ('10', 'b')


def test_slide_id_of_a_sidecar_is_refused(tmp_path):
    root = slide_root(tmp_path, b'slide_id,label\ns0.tif.json,tumor\ns1,normal\n')
    with pytest.raises(AnnotationError, match=r"labels.csv:2: slide_id 's0.tif.json' names a "
                                              r'file that is not a slide'):
        SlideFolder(root)
    ok = SlideFolder(slide_root(tmp_path / 'ok', b'slide_id,label\ns0.tif,tumor\ns1,normal\n'))
    assert [osp.basename(ok.get_data_info(i)['img_path']) for i in range(2)] == ['s0.tif', 's1.svs']


def test_split_without_rows_is_named(tmp_path):
    root = slide_root(tmp_path, b'slide_id,label,split\ns0,tumor,train\ns1,normal,test\n')
    with pytest.raises(AnnotationError, match=r"labels.csv: no row has split 'val' \(the "
                                              r"splits there: \['test', 'train'\]\)"):
        SlideFolder(root, split='val')


@pytest.mark.parametrize('row', ['s1,normal', 's1,normal,train,EXTRA'])
def test_row_with_wrong_field_count_names_the_line(tmp_path, row):
    root = slide_root(tmp_path, f'slide_id,label,split\ns0,tumor,train\n{row}\n'.encode())
    with pytest.raises(AnnotationError, match=r'labels.csv:3: expected 3 fields'):
        SlideFolder(root, split='train')


# ---------------------------------------------------------------- BreakHis

def misplace(root, src_mag, dst_mag):
    """Move one 40X image of the first benign patient into its ``dst_mag`` folder."""
    breast = osp.join(root, 'BreaKHis_v1', 'histology_slides', 'breast')
    patient = osp.join(breast, 'benign', 'SOB', 'adenosis', 'SOB_B_A_14-22549CD')
    os.makedirs(osp.join(patient, dst_mag), exist_ok=True)
    name = 'SOB_B_A-14-22549CD-40-001.png'
    shutil.move(osp.join(patient, src_mag, name), osp.join(patient, dst_mag, name))
    return name


def test_breakhis_name_must_agree_with_its_folders(tmp_path):
    make_breakhis(str(tmp_path))
    name = misplace(str(tmp_path), '40X', '100X')
    with pytest.raises(AnnotationError, match=f"{name}: the file name says magnification "
                                              f"'40X' but its folder is '100X'"):
        BreakHis(str(tmp_path), split='test', num_folds=3)


def test_breakhis_class_folder_must_agree(tmp_path):
    make_breakhis(str(tmp_path))
    wrong = osp.join(tmp_path, 'BreaKHis_v1', 'histology_slides', 'breast', 'malignant', 'SOB',
                     'ductal_carcinoma', 'SOB_M_DC_14-22749CD', '40X')
    name = 'SOB_B_DC-14-22749CD-40-009.png'
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(osp.join(wrong, name))
    with pytest.raises(AnnotationError, match=f"{name}: the file name says class 'benign'"):
        BreakHis(str(tmp_path), split='test', num_folds=3)


@pytest.mark.parametrize('kwargs', [dict(fold=0.5), dict(fold=True), dict(num_folds=3.0)])
def test_breakhis_fold_must_be_an_integer(tmp_path, kwargs):
    with pytest.raises(ValueError, match='fold must be an integer'):
        BreakHis(str(tmp_path), split='test', **kwargs)


def test_breakhis_skips_hidden_files(tmp_path):
    make_breakhis(str(tmp_path))
    patient = osp.join(tmp_path, 'BreaKHis_v1', 'histology_slides', 'breast', 'benign', 'SOB',
                       'adenosis', 'SOB_B_A_14-22549CD', '40X')
    open(osp.join(patient, '._SOB_B_A-14-22549CD-40-001.png'), 'wb').write(b'\x00\x05\x16')
    os.makedirs(osp.join(patient, '.thumbs'))
    open(osp.join(patient, '.thumbs', 'x.png'), 'wb').write(b'x')
    ds = BreakHis(str(tmp_path), split='train', magnification=40, num_folds=3)
    assert not any('/.' in ds.get_data_info(i)['img_path'] for i in range(len(ds)))


def test_breakhis_folds_file_with_bom_and_a_bad_row(tmp_path):
    names = make_breakhis(str(tmp_path))
    rows = [f'1,{mag},test,x/{name}' for name, _, mag in names[:4]]
    folds = tmp_path / 'Folds.csv'
    folds.write_bytes(('\ufefffold,mag,grp,filename\n' + '\n'.join(rows) + '\n').encode())
    assert len(BreakHis(str(tmp_path), split='test', folds_file=str(folds))) == 4
    folds.write_text('fold,mag,grp,filename\n' + rows[0] + '\none,40,test,x/a.png\n')
    with pytest.raises(AnnotationError, match=r'Folds.csv:3: expected an integer fold'):
        BreakHis(str(tmp_path), split='test', folds_file=str(folds))


@pytest.mark.parametrize('classes', ['normal,tumor', ['a', ''], ['a', 3]])
def test_classes_must_be_a_list_of_names(classes):
    from gattn_mm.datasets.base_microscopy import class_names
    with pytest.raises(ValueError, match='SlideFolder: classes must be a list of class names'):
        class_names(classes, 'SlideFolder')
    assert class_names(['a', 'b'], 'SlideFolder') == ('a', 'b')
    assert class_names(None, 'SlideFolder') is None
