# Ablation: gattn_fungi_cpu.py on SynthCells with its learned attention replaced by
# the contrast prior alone (softmax of the z-scored contrast of each cell; no
# learned parameter), on a trained gattn checkpoint (same reader and heads). Test only:
#   python tools/test.py configs/baselines/synthcells_contrast_attention.py GATTN_CHECKPOINT
_base_ = ['../gattn_fungi_cpu.py']
model = dict(type='FixedAttentionClassifier', attention='contrast')
