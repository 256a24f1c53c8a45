# Ablation: a trained gattn_fungi_cpu.py model on SynthCells deciding with the mean of
# the class probabilities of its gated instances and of its fused head (the recipe's
# decision; gattn_fungi_cpu.py decides by the instances alone). Test only:
#   python tools/test.py configs/baselines/synthcells_both_heads.py GATTN_CHECKPOINT
_base_ = ['../gattn_fungi_cpu.py']
model = dict(predict_from=('instance_head', 'head'))
