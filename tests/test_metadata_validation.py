"""Class lists and split cells are checked wherever they are read, and a bad one is
refused naming its file and key: class names are a list of unique, non-empty strings
(never a string read as one class per character, a dict, or a name given twice) in a
dataset's ``classes`` and ``metainfo``, in ``meta.json`` and in a checkpoint's meta;
a SlideFolder CSV row names a known split (an empty or misspelt cell never drops the
slide from every split)."""
import json

import pytest

from gattn_mm.datasets import DigitBags, SlideFolder
from gattn_mm.datasets.base_microscopy import (AnnotationError, MicroscopyDataset,
                                               check_classes, class_names)

BAD_CLASSES = [
    ('ab', r"the string 'ab' \(it would be one class per character\)"),
    ({'0': 'a', '1': 'b'}, r'got a dict .*list the names in class-index order'),
    ({'a', 'b'}, 'got a set'),
    (['a', 'b', 'a'], r"got 'a' twice \(at indices 0 and 2\)"),
    (['a', ''], r"got '' at index 1"),
    (['a', '  '], r"got '  ' at index 1"),
    (['a', 3], 'got 3 at index 1'),
    (['a', None], 'got None at index 1'),
    (7, 'got a int 7'),
]


@pytest.mark.parametrize('classes, why', BAD_CLASSES)
def test_a_class_list_is_unique_non_empty_strings(classes, why):
    with pytest.raises(AnnotationError, match=f'owner: classes must be a list of class names '
                                              f'.*{why}'):
        check_classes(classes, 'owner')
    assert check_classes(['a', 'b'], 'owner') == ('a', 'b')
    assert check_classes(('a',), 'owner') == ('a',)
    assert class_names(None, 'owner') is None and class_names([], 'owner') is None


def slide_root(tmp_path, csv_text, names=('s0.tif', 's1.svs', 's2.tiff')):
    (tmp_path / 'slides').mkdir(parents=True)
    for name in names:
        (tmp_path / 'slides' / name).write_bytes(b'x')  # never opened here
    (tmp_path / 'labels.csv').write_text(csv_text)
    return str(tmp_path)


@pytest.mark.parametrize('classes, why', BAD_CLASSES[:5])
def test_dataset_classes_and_metainfo_are_checked(tmp_path, classes, why):
    root = slide_root(tmp_path, 'slide_id,label\ns0,a\ns1,b\n')
    with pytest.raises(AnnotationError, match=f'SlideFolder: classes must .*{why}'):
        SlideFolder(root, classes=classes)
    assert SlideFolder(root, classes=['b', 'a']).metainfo['classes'] == ('b', 'a')

    class Listed(MicroscopyDataset):  # classes from a config's dataset.metainfo
        def load_data_list(self):
            return []
    with pytest.raises(AnnotationError, match=f'Listed metainfo: classes must .*{why}'):
        Listed(metainfo=dict(classes=classes), serialize_data=False)
    listed = Listed(metainfo=dict(classes=['x', 'y']), serialize_data=False)
    assert listed.metainfo['classes'] == ('x', 'y')


@pytest.mark.parametrize('classes, why', BAD_CLASSES[:5])
def test_meta_json_classes_name_the_file_and_key(tmp_path, classes, why):
    if isinstance(classes, set):
        classes = sorted(classes)  # JSON has no sets: a list of the same names is fine
        why = None
    (tmp_path / 'meta.json').write_text(json.dumps(dict(classes=classes)))
    if why is None:
        return
    with pytest.raises(AnnotationError, match=f'meta.json: key "classes"'):
        DigitBags(str(tmp_path), split='train')


@pytest.mark.parametrize('cell, why', [
    ('', r"labels.csv:3: the split cell is empty; expected one of train, val, test"),
    ('  ', r"labels.csv:3: the split cell is empty"),
    ('Train', r"labels.csv:3: split 'Train' is not one of train, val, test"),
    ('tset', r"labels.csv:3: split 'tset' is not one of"),
])
def test_a_slide_csv_row_of_no_known_split_is_refused(tmp_path, cell, why):
    root = slide_root(tmp_path, f'slide_id,label,split\ns0,a,train\ns1,b,{cell}\n'
                                f's2,a,test\n')
    for split in ('train', 'test', None):  # whichever split is asked for
        with pytest.raises(AnnotationError, match=why):
            SlideFolder(root, split=split)


def test_slide_csv_splits_can_be_named(tmp_path):
    root = slide_root(tmp_path, 'slide_id,label,split\ns0,a,fold1\ns1,b,fold2\ns2,a,fold1\n')
    assert len(SlideFolder(root, split='fold1', splits=('fold1', 'fold2'))) == 2
    assert len(SlideFolder(root, split='fold2', splits=None)) == 1
    with pytest.raises(ValueError, match=r"split='fold3' is not one of the splits"):
        SlideFolder(root, split='fold3', splits=('fold1', 'fold2'))
    with pytest.raises(AnnotationError, match=r"labels.csv:2: split 'fold1' is not one of "
                                              r'train, val, test'):
        SlideFolder(root, split='train')
