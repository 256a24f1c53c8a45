# Ablation: gattn_fungi_cpu.py on SynthCells with its learned attention replaced by
# random cells, on a trained gattn checkpoint (same reader and heads). Test only:
#   python tools/test.py configs/baselines/synthcells_random_attention.py GATTN_CHECKPOINT
_base_ = ['../gattn_fungi_cpu.py']
model = dict(type='FixedAttentionClassifier', attention='random')
