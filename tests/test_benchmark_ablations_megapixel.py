"""The ablation benchmark (tools/benchmarks/accuracy.py) runs end to end in --quick
mode on Megapixel digits: the test-only rows read gattn's checkpoint (its own file,
apart from DigitBags in test_benchmark_ablations.py, so that pytest-xdist's loadfile
can run the two on both workers)."""
from test_benchmark_ablations import run_accuracy


def test_accuracy_quick_megapixel(tmp_path):
    rows, table = run_accuracy(tmp_path, 'megapixel', ['gattn', 'instance_head', 'fused_head',
                                                       'contrast_attention', 'global_only'])
    assert rows['fused_head']['checkpoint'] == rows['gattn']['checkpoint']
    assert rows['instance_head']['checkpoint'] == rows['gattn']['checkpoint']
    assert 'box_precision' in rows['contrast_attention']
    assert 'box_precision' not in rows['global_only']
    assert '| contrast_attention | `configs/baselines/megapixel_contrast_attention.py`' in table
